"""A fast local LLM-shaped upstream for bench/http_bench.py (trio + h11, keep-alive):
POST /v1/chat/completions answers a small JSON completion, or with `"stream": true` an SSE
stream of `n` chunks (default 2000) whose text carries an email every 50 chunks. Prints its
port on stdout. Loopback only."""

from __future__ import annotations

import json
import sys

import h11
import trio

ANSWER = json.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there, how can I help?"},
                                  "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}).encode()


def _chunk(text: str) -> bytes:
    event = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def stream_body(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        out.append(_chunk(" mail alice@example.com" if i % 50 == 0 else f" token{i}"))
    out.append(b"data: [DONE]\n\n")
    return out


async def serve(stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER)
    while True:
        body = b""
        request = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                if not data:
                    return
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                return
        params = json.loads(body) if body else {}
        if params.get("stream"):
            await stream.send_all(conn.send(h11.Response(status_code=200, headers=[("content-type", "text/event-stream")])))
            pieces = stream_body(int(params.get("n", 2000)))
            for i in range(0, len(pieces), 20):
                await stream.send_all(conn.send(h11.Data(data=b"".join(pieces[i:i + 20]))))
        else:
            await stream.send_all(conn.send(h11.Response(status_code=200, headers=[
                ("content-type", "application/json"), ("content-length", str(len(ANSWER)))])))
            await stream.send_all(conn.send(h11.Data(data=ANSWER)))
        await stream.send_all(conn.send(h11.EndOfMessage()))
        conn.start_next_cycle()


async def main() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    print(listeners[0].socket.getsockname()[1], flush=True)
    await trio.serve_listeners(serve, listeners)


if __name__ == "__main__":
    trio.run(main)
    sys.exit(0)
