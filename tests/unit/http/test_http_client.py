"""The upstream client: keep-alive reuse per origin, the stale-connection retry, streamed bodies
and the errors it raises (502/504), against a small h11 server in the test."""

from __future__ import annotations

import functools

import h11
import pytest
import trio

from wireproxy.http.client import HttpClient, Origin, UpstreamError


class Upstream:
    """Answers every request with its body echoed; `close_after` requests per connection."""

    def __init__(self, close_after: int | None = None, silent: bool = False):
        self.connections = 0
        self.close_after = close_after
        self.silent = silent

    async def serve(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        served = 0
        while True:
            body = b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    conn.receive_data(data)
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    return
            if self.silent:
                await trio.sleep_forever()
            await stream.send_all(conn.send(h11.Response(status_code=200, headers=[("content-length", str(len(body)))])))
            await stream.send_all(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
            served += 1
            if self.close_after and served >= self.close_after:
                await stream.aclose()          # a keep-alive connection the client thinks is open
                return
            conn.start_next_cycle()


async def _start(nursery, upstream: Upstream) -> Origin:
    listeners = await nursery.start(functools.partial(trio.serve_tcp, upstream.serve, 0, host="127.0.0.1"))
    return Origin("http", "127.0.0.1", listeners[0].socket.getsockname()[1])


async def _post(client: HttpClient, origin: Origin, body) -> tuple[int, bytes]:
    async with client.request(origin, "POST", "/x", [("content-type", "text/plain")], body) as response:
        return response.status, await response.read(1 << 20)


async def test_keep_alive_reuses_one_connection(nursery):
    upstream = Upstream()
    origin = await _start(nursery, upstream)
    client = HttpClient()
    for i in range(5):
        assert await _post(client, origin, f"hello {i}".encode()) == (200, f"hello {i}".encode())
    assert upstream.connections == 1
    await client.aclose()


async def test_stale_connection_is_retried_once(nursery):
    upstream = Upstream(close_after=1)
    origin = await _start(nursery, upstream)
    client = HttpClient()
    assert await _post(client, origin, b"one") == (200, b"one")
    await trio.sleep(0.05)
    assert await _post(client, origin, b"two") == (200, b"two")   # pooled one was dead: a fresh one
    assert upstream.connections == 2


async def test_streamed_request_body(nursery):
    origin = await _start(nursery, Upstream())

    async def parts():
        for piece in (b"a" * 1000, b"b" * 1000):
            yield piece
    assert await _post(HttpClient(), origin, parts()) == (200, b"a" * 1000 + b"b" * 1000)


async def test_errors_carry_the_status_to_give():
    with pytest.raises(UpstreamError) as err:
        await _post(HttpClient(connect_timeout=2), Origin("http", "127.0.0.1", 1), b"x")
    assert err.value.status == 502 and "127.0.0.1:1" in str(err.value)


async def test_read_timeout_is_504(nursery):
    origin = await _start(nursery, Upstream(silent=True))
    with pytest.raises(UpstreamError) as err:
        await _post(HttpClient(read_timeout=0.2), origin, b"x")
    assert err.value.status == 504


def test_origin_parse():
    assert Origin.parse("https://api.x.com/v1?a=1") == (Origin("https", "api.x.com", 443), "/v1?a=1")
    assert Origin.parse("http://[::1]:8080")[0].host_header == "[::1]:8080"
    with pytest.raises(ValueError):
        Origin.parse("ftp://x")
