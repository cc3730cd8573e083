"""The pumps around the relay, on trio's memory streams: the test plays both the client and the
upstream server, byte for byte, and the session in between is the real one."""

from __future__ import annotations

import trio
import trio.testing

from protocols.postgres import (Authentication, BackendKeyData, CommandComplete, DataRow, Field, Framer, Query, ReadyForQuery, RowDescription, StartupMessage,
                                Terminate, decode_backend)
from wireproxy.config import PostgresListener, parse_address
from wireproxy.pg.cancel import CancelRegistry
from wireproxy.pg.session import PgSession
from wireproxy.policy import Action, Decision, Limits
from wireproxy.policy.decision import ALLOW

HELLO = [Authentication(0), BackendKeyData(7, b"\x00\x00\x00\x09"), ReadyForQuery("I")]
LISTENER = PostgresListener(parse_address("127.0.0.1:1"), parse_address("127.0.0.1:2"))


def wire(*messages) -> bytes:
    return b"".join(m.encode() for m in messages)


async def read_messages(stream, until: str) -> list:
    framer, got = Framer(1 << 30), []
    while not any(type(m).__name__ == until for m in got):
        data = await stream.receive_some(65536)
        if not data:
            break
        got += [decode_backend(code, message[5:]) for code, message in framer.feed(data)]
    return got


async def read_exactly(stream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await stream.receive_some(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


class Harness:
    def __init__(self, **kwargs):
        self.client, proxy_side = trio.testing.memory_stream_pair()
        self.server, self.upstream_side = trio.testing.memory_stream_pair()
        self.cancels_sent: list = []
        self.connected = trio.Event()
        self.session = PgSession(proxy_side, LISTENER, CancelRegistry(), connect_upstream=self.connect,
                                 cancel_upstream=self.cancel, **kwargs)

    async def connect(self, host, port, timeout):
        self.connected.set()
        return self.upstream_side

    async def cancel(self, upstream, request, timeout):
        self.cancels_sent.append(request)

    async def start(self, nursery):
        nursery.start_soon(self.session.run)
        startup = StartupMessage({"user": "alice"}).encode()
        await self.client.send_all(startup)
        assert await read_exactly(self.server, len(startup)) == startup
        await self.server.send_all(wire(*HELLO))
        assert [type(m) for m in await read_messages(self.client, "ReadyForQuery")] == [
            Authentication, BackendKeyData, ReadyForQuery]


async def test_bytes_flow_both_ways_and_terminate_closes_the_session():
    h = Harness()
    async with trio.open_nursery() as nursery:
        await h.start(nursery)
        query = Query("SELECT 1").encode()
        await h.client.send_all(query)
        assert await read_exactly(h.server, len(query)) == query
        await h.server.send_all(wire(CommandComplete("SELECT 1"), ReadyForQuery("I")))
        assert [type(m) for m in await read_messages(h.client, "ReadyForQuery")] == [CommandComplete, ReadyForQuery]
        await h.client.send_all(Terminate().encode())
        assert await read_exactly(h.server, 5) == Terminate().encode()
    assert h.session.relay.close_reason == "client terminated" and not h.cancels_sent


async def test_a_client_that_vanishes_mid_query_gets_its_query_cancelled():
    h = Harness()
    async with trio.open_nursery() as nursery:
        await h.start(nursery)
        query = Query("SELECT pg_sleep(60)").encode()
        await h.client.send_all(query)
        await read_exactly(h.server, len(query))
        await h.client.aclose()
    assert [(c.process_id, c.secret) for c in h.cancels_sent] == [(7, b"\x00\x00\x00\x09")]


async def test_an_unreachable_upstream_gets_08001_naming_it():
    h = Harness()

    async def refuse(host, port, timeout):
        raise OSError(111, "Connection refused")
    h.session.connect_upstream = refuse
    async with trio.open_nursery() as nursery:
        nursery.start_soon(h.session.run)
        await h.client.send_all(StartupMessage({"user": "alice"}).encode())
        (error,) = await read_messages(h.client, "ErrorResponse")
    assert error.sqlstate == "08001" and "127.0.0.1:2" in error.message


class CapRows:
    version = 0
    standard_conforming_strings = True

    def query(self, sql):
        return Decision(Action.ALLOW, limits=Limits(max_rows=1, rule_ids=("cap",)), facts=()) if "big" in sql else ALLOW

    parse = lambda self, sql, name="": self.query(sql)        # noqa: E731
    close = function = lambda self, *a: ALLOW                  # noqa: E731


async def test_a_cut_result_cancels_upstream_and_the_next_statement_waits_for_the_cancel():
    h = Harness(judge_factory=lambda user: CapRows())
    async with trio.open_nursery() as nursery:
        await h.start(nursery)
        first, second = Query("SELECT * FROM big").encode(), Query("SELECT 2").encode()
        await h.client.send_all(first + second)
        assert await read_exactly(h.server, len(first)) == first       # the second is held
        rows = [DataRow.from_values([b"%d" % i]) for i in range(3)]
        await h.server.send_all(wire(RowDescription((Field("n"),)), *rows, CommandComplete("SELECT 3"),
                                     ReadyForQuery("I")))
        got = await read_messages(h.client, "ReadyForQuery")
        assert [type(m).__name__ for m in got] == ["RowDescription", "DataRow", "ErrorResponse", "ReadyForQuery"]
        assert got[2].sqlstate == "54000"
        assert await read_exactly(h.server, len(second)) == second    # released once the cancel is out
        assert len(h.cancels_sent) == 1
        nursery.cancel_scope.cancel()


async def test_a_client_refused_mid_message_still_reads_its_error():
    listener = PostgresListener(LISTENER.listen, LISTENER.upstream, max_message_size=1024)
    h = Harness()
    h.session.relay.client.max_message_size = listener.max_message_size
    async with trio.open_nursery() as nursery:
        await h.start(nursery)

        async def keep_writing():
            big = b"Q" + (60_000).to_bytes(4, "big") + b"x" * 59_995
            try:
                await h.client.send_all(big)
            except trio.BrokenResourceError:
                pass
        nursery.start_soon(keep_writing)
        (error,) = await read_messages(h.client, "ErrorResponse")
        assert await h.client.receive_some(10) == b""     # then our end of the stream
        await h.client.aclose()
    assert error.sqlstate == "08P01" and "over the limit of 1024" in error.message
    assert h.session.relay.close_reason == "malformed client input"
