"""A small fake LLM API for the HTTP tests: OpenAI chat/completions and Anthropic messages,
answered whole or streamed (SSE) in the chunks the test chooses. Loopback only; every request
it receives is kept (`seen`) so a test can assert what reached the upstream."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeLLM:
    def __init__(self, answer: str = "Hello!", chunks: list[str] | None = None, ssl_context=None):
        self.answer = answer
        self.chunks = chunks
        self.seen: list[dict] = []
        self.delay = 0.0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                owner._handle(self, "GET")

            def do_POST(self):
                owner._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if ssl_context is not None:
            self.server.socket = ssl_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.seen.append({"method": method, "path": h.path, "headers": {k.lower(): v for k, v in h.headers.items()},
                          "body": body, "raw": raw})
        if self.delay:
            time.sleep(self.delay)
        path = h.path.split("?")[0]
        stream = isinstance(body, dict) and body.get("stream")
        if path.endswith("/chat/completions"):
            self._openai(h, body, stream)
        elif path.endswith("/messages"):
            self._anthropic(h, body, stream)
        elif path.endswith("/echo"):
            self._send(h, 200, "application/json", json.dumps({"echo": body, "headers": dict(h.headers)}).encode())
        else:
            self._send(h, 404, "application/json", b'{"error": {"message": "no such route"}}')

    def _pieces(self) -> list[str]:
        return self.chunks if self.chunks is not None else [self.answer]

    def _send(self, h, status: int, ctype: str, body: bytes) -> None:
        h.send_response(status)
        h.send_header("content-type", ctype)
        h.send_header("content-length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _stream(self, h, events: list[bytes]) -> None:
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("transfer-encoding", "chunked")
        h.end_headers()
        for event in events:
            h.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            h.wfile.flush()
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()

    def _openai(self, h, body, stream) -> None:
        model = (body or {}).get("model", "gpt-test")
        if not stream:
            answer = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(self._pieces())},
                                   "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}}
            self._send(h, 200, "application/json", json.dumps(answer).encode())
            return
        def chunk(delta, finish=None):
            return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in self._pieces()]
        events.append(chunk({}, "stop"))
        self._stream(h, [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"])

    def _anthropic(self, h, body, stream) -> None:
        model = (body or {}).get("model", "claude-test")
        message = {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                   "stop_reason": None, "stop_sequence": None, "content": [],
                   "usage": {"input_tokens": 10, "output_tokens": 1}}
        if not stream:
            message.update(content=[{"type": "text", "text": "".join(self._pieces())}], stop_reason="end_turn")
            self._send(h, 200, "application/json", json.dumps(message).encode())
            return
        events = [("message_start", {"type": "message_start", "message": message}),
                  ("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}})]
        events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": piece}}) for piece in self._pieces()]
        events += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
                   ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                      "usage": {"output_tokens": 20}}),
                   ("message_stop", {"type": "message_stop"})]
        self._stream(h, [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events])
