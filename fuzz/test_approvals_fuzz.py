"""Property tests for what strangers can send the approvals side.

1. SCRAM: whatever a server answers, the client either goes on or raises ScramError; nothing
   else. (h11's fuzz rule, for protocols/postgres/scram.py.)
2. The admin API's HTTP loop: whatever bytes a client sends, in whatever pieces, the connection
   ends with at most well-formed HTTP responses; the server never raises, and nothing but
   /healthz is served without the token.

CI runs a short slice; WIREPROXY_SLOW=1 runs the long soak.
"""

from __future__ import annotations

import os

import h11
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.postgres.scram import ScramClient, ScramError
from wireproxy.admin import AdminApi
from wireproxy.admin.http import serve_connection
from wireproxy.approvals import Broker

SLOW = bool(os.environ.get("WIREPROXY_SLOW"))
TOKEN = "t" * 43

printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
scram_messages = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda extra, salt, it, tail: f"r=NONCE{extra},s={salt},i={it}{tail}".encode(),
              printable, st.sampled_from(["c2FsdA==", "", "!!", "c2FsdA"]),
              st.sampled_from(["1", "4096", "0", "-3", "x", "99999999999"]), st.sampled_from(["", ",m=x", ",r=dup"])),
)


@pytest.mark.slow
@settings(max_examples=20_000 if SLOW else 200, deadline=None)
@given(server_first=scram_messages, server_final=scram_messages)
def test_scram_raises_only_its_own_error(server_first, server_final):
    scram = ScramClient("pencil", nonce="NONCE")
    try:
        final = scram.final_message(server_first)
    except ScramError:
        return
    assert final.startswith(b"c=biws,r=NONCE")
    with pytest.raises(ScramError):        # no random bytes hold the server's signature
        scram.verify_server(server_final)


_REQUEST_LINES = [b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /approvals HTTP/1.1\r\nHost: x\r\n\r\n",
                  b"POST /approvals/ap-x/approve HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{\"a\":",
                  b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n\r\n",
                  b"POST /approvals/ap-x/deny HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{}}\r\n0\r\n\r\n"]
client_bytes = st.lists(st.one_of(st.sampled_from(_REQUEST_LINES), st.binary(max_size=64)), max_size=6).map(b"".join)


@pytest.mark.slow
@settings(max_examples=3_000 if SLOW else 150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=client_bytes, cut=st.integers(1, 64))
def test_the_admin_http_loop_survives_any_client(data, cut):
    async def main() -> bytes:
        broker = Broker()
        api = AdminApi(broker, TOKEN)
        server_side, client_side = trio.testing.memory_stream_pair()
        received = bytearray()

        async def read_all():
            while chunk := await client_side.receive_some(65536):
                received.extend(chunk)

        async with trio.open_nursery() as nursery:
            await nursery.start(broker.run)
            async with trio.open_nursery() as connection:
                connection.start_soon(serve_connection, server_side, api, "fuzz")
                connection.start_soon(read_all)
                try:
                    for start in range(0, len(data), cut):
                        await client_side.send_all(data[start:start + cut])
                    await client_side.send_eof()
                except trio.BrokenResourceError:
                    pass                   # the server answered 400 and hung up: as a socket would
            nursery.cancel_scope.cancel()
        return bytes(received)

    reply = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert statuses_of(reply) <= {200, 400, 401, 405, 413, 431}


def statuses_of(reply: bytes) -> set[int]:
    """The status codes of the responses in `reply`, read by h11 as a client would (so a
    malformed response fails the test)."""
    client = h11.Connection(h11.CLIENT)
    client.receive_data(reply)
    client.receive_data(b"")
    statuses = set()
    while True:
        if client.our_state is h11.IDLE:
            if not client.trailing_data[0]:
                return statuses            # no more responses
            client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
            client.send(h11.EndOfMessage())
        event = client.next_event()
        if isinstance(event, h11.Response):
            statuses.add(event.status_code)
        elif isinstance(event, h11.EndOfMessage):
            if client.our_state is not h11.DONE or client.their_state is not h11.DONE:
                return statuses
            client.start_next_cycle()
        elif event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
            return statuses
