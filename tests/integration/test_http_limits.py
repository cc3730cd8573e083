"""Limits and failures on the HTTP listener: slowloris, oversized heads and bodies, an upstream
that is down or silent, too many connections; every time other clients go on being served."""

from __future__ import annotations

import json
import socket

import httpx
import trio

from fakellm import FakeLLM
from httpkit import in_thread, running_proxy

LIMITS = '''
header_timeout = 0.5
body_timeout = 0.5
max_body_bytes = 1000
max_header_bytes = 4096
read_timeout = 0.5
'''


async def _raw(port: int, data: bytes, *, then_wait: bool = True) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(data)
    out = b""
    with trio.fail_after(10):
        while then_wait:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            out += chunk
    await stream.aclose()
    return out


def _status_and_json(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


async def _served(port: int) -> int:
    return (await in_thread(lambda: httpx.post(f"http://127.0.0.1:{port}/echo", json={"x": 1}))).status_code


async def test_slowloris_head_gets_408_while_others_are_served(tmp_path):
    with FakeLLM() as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"' + LIMITS) as (_, port):
            slow = await trio.open_tcp_stream("127.0.0.1", port)
            await slow.send_all(b"POST /echo HTTP/1.1\r\nHost: x\r\n")      # and never the rest
            assert await _served(port) == 200
            with trio.fail_after(10):
                answer = b""
                while chunk := await slow.receive_some(65536):
                    answer += chunk
            status, body = _status_and_json(answer)
            assert status == 408 and "headers not received" in body["error"]["message"]
            assert await _served(port) == 200


async def test_slow_body_gets_408(tmp_path):
    with FakeLLM() as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"' + LIMITS) as (_, port):
            answer = await _raw(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"a\":")
            status, body = _status_and_json(answer)
            assert status == 408 and "body" in body["error"]["message"]
            assert upstream.seen == []


async def test_oversized_bodies_get_413(tmp_path):
    with FakeLLM() as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"' + LIMITS) as (_, port):
            declared = await _raw(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n")
            assert _status_and_json(declared)[0] == 413
            chunked = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            chunked += b"".join(b"200\r\n" + b"a" * 512 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"
            status, body = _status_and_json(await _raw(port, chunked))
            assert status == 413 and body["error"]["type"] == "request_too_large"
            huge_head = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 10000 + b"\r\n\r\n"
            assert _status_and_json(await _raw(port, huge_head))[0] == 431
            assert await _served(port) == 200
            assert len(upstream.seen) == 1


async def test_malformed_request_gets_400(tmp_path):
    with FakeLLM() as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"' + LIMITS) as (_, port):
            status, body = _status_and_json(await _raw(port, b"NOT HTTP AT ALL\r\n\r\n"))
            assert status == 400 and body["error"]["type"] == "invalid_request_error"
            assert await _served(port) == 200


async def test_upstream_down_is_502_and_silent_upstream_504(tmp_path):
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    async with running_proxy(tmp_path, f'upstream = "http://127.0.0.1:{dead_port}"' + LIMITS) as (_, port):
        response = await in_thread(lambda: httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={}))
        assert response.status_code == 502
        assert f"127.0.0.1:{dead_port}" in response.json()["error"]["message"]
    with FakeLLM() as upstream:
        upstream.delay = 2.0
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"' + LIMITS) as (_, port):
            response = await in_thread(lambda: httpx.post(f"http://127.0.0.1:{port}/echo", json={}))
            assert response.status_code == 504
            assert response.json()["error"]["type"] == "upstream_timeout"


async def test_max_connections(tmp_path):
    with FakeLLM() as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"\nmax_connections = 1') as (_, port):
            holder = await trio.open_tcp_stream("127.0.0.1", port)
            await holder.send_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            await holder.receive_some(65536)                 # served; the connection stays open
            status, body = _status_and_json(await _raw(port, b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"))
            assert status == 503 and "too many connections" in body["error"]["message"]
            await holder.aclose()


async def test_expect_100_continue(tmp_path):
    with FakeLLM() as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"' + LIMITS, rules=None) as (_, port):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                                  b"Content-Type: application/json\r\nContent-Length: 7\r\n\r\n")
            with trio.fail_after(5):
                interim = await stream.receive_some(65536)
            assert interim.startswith(b"HTTP/1.1 100 ")
            await stream.send_all(b'{"a":1}')
            with trio.fail_after(5):
                answer = b""
                while b'"echo"' not in answer or not answer.rstrip().endswith(b"}"):
                    answer += await stream.receive_some(65536)
            assert b"200 OK" in answer and b'"a": 1' in answer
            await stream.aclose()


async def test_shutdown_closes_idle_keep_alive_connections(tmp_path):
    with FakeLLM() as upstream:
        async with running_proxy(tmp_path, f'upstream = "{upstream.url}"', rules=None) as (server, port):
            idle = await trio.open_tcp_stream("127.0.0.1", port)
            await idle.send_all(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while not answer.endswith(b"}}"):              # answered in full; now at rest, kept alive
                answer += await idle.receive_some(65536)
            server.request_shutdown()                      # once: a graceful drain
            with trio.fail_after(5):                       # long before idle_timeout (60 s)
                assert await idle.receive_some(65536) == b""
