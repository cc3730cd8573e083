"""The relay against a model PostgreSQL, as a hypothesis state machine.

A client sends random interleavings of simple queries, named and unnamed Parse/Bind/Describe/
Execute/Close, Sync and Flush, pipelines, errors inside batches, COPY in (as psql and as libpq's
extended protocol do it) and out, notices, notifications, DISCARD ALL, blocked statements inside
transactions and pipelines, masked results, cut results and FunctionCalls that need an in-band
lookup; the bytes go to the relay in random chunks. The same stream goes straight to a reference
model that answers as the client should see it through wireproxy (pgmodel.py). Invariants:
- the client gets exactly the reference's bytes: every blocked statement's error is 42501 with its
  rule id, one ReadyForQuery per sync point the server answers, no answer to the proxy's own
  requests, masked values masked, cut results cut, and the server's transaction status;
- nothing blocked reaches the server;
- when the client is idle, the relay expects nothing and holds nothing.
"""

from __future__ import annotations

import os

from collections import deque

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pgmodel import FUNCTION_OID, ModelServer
from protocols.postgres import (Authentication, BackendKeyData, Bind, Close, CopyData, CopyDone, CopyFail,
                                Describe, Execute, Flush, Framer, FunctionCall, ParameterStatus, Parse, Query,
                                ReadyForQuery, StartupMessage, Sync)
from wireproxy.config.rulebook import RuleBook
from wireproxy.pg.protocol import CancelQuery, EndSession
from wireproxy.pg.relay import PgRelay

RULES = """
[[rule]]
id = "no-drop"
action = "block"
statements = ["drop"]
message = "no dropping"

[[rule]]
id = "cap-rows"
action = "block"
tables = ["big"]
max_rows = 2

[[mask]]
id = "emails"
columns = ["email"]
detectors = ["email"]
style = "redact"
"""

SELECTS = ["SELECT n FROM small", "SELECT email FROM people", "SELECT n FROM big", "SELECT 1/0",
           "SELECT notice", "SELECT notify"]
COMMANDS = ["BEGIN", "COMMIT", "ROLLBACK", "INSERT INTO t VALUES (1)", "DROP TABLE t", "COPY t TO STDOUT"]
STATEMENTS = SELECTS + COMMANDS
SIMPLE = st.one_of(st.sampled_from(STATEMENTS + ["DISCARD ALL", ""]),
                   st.lists(st.sampled_from(STATEMENTS), min_size=2, max_size=3).map("; ".join))
NAMES = st.sampled_from(["", "s1", "s2"])
PORTALS = st.sampled_from(["", "p1"])
CHUNKS = st.one_of(st.none(), st.integers(1, 40))
LANDS = st.lists(st.booleans(), min_size=4, max_size=4)
HELLO = [Authentication(0), ParameterStatus("standard_conforming_strings", "on"),
         BackendKeyData(4242, b"\x01\x02\x03\x04"), ReadyForQuery("I")]


def wire(*messages) -> bytes:
    return b"".join(m.encode() for m in messages)


def pieces(data: bytes, size: int | None):
    if size is None:
        yield data
        return
    for i in range(0, len(data), size):
        yield data[i:i + size]


class RelayAgainstModel(RuleBasedStateMachine):
    @initialize()
    def connect(self):
        import tempfile
        from pathlib import Path
        rules = Path(tempfile.mkdtemp(prefix="wireproxy-model-")) / "rules.toml"
        rules.write_text(RULES)
        book = RuleBook([rules], b"k" * 32)
        masker = book.session_masker("alice")
        self.relay = PgRelay(upstream="model:5432", judge_factory=book.session_judge,
                             mask_factory=book.session_masker, recording=True, max_result_bytes=1 << 20)
        self.server = ModelServer()
        self.reference = ModelServer(reference=True, masker=masker,
                                     block_text="blocked by wireproxy rule no-drop: no dropping",
                                     cut_text="result cut by wireproxy rule cap-rows: more than 2 rows")
        self.lands: deque = deque()
        self.seen, self.expected = bytearray(), bytearray()
        self.in_copy = False
        self.open_batch = False
        self.relay.client_data(StartupMessage({"user": "alice", "database": "shop"}).encode())
        self.relay.to_server.clear()
        self.relay.server_data(wire(*HELLO))
        self.pump()
        self.seen.clear()

    # ------------------------------------------------------------------ the harness --

    def send(self, messages, chunks, lands=()):
        data = wire(*messages)
        self.lands.extend(lands)
        self.reference.cancels.extend(lands)
        self.reference.feed(data)
        self.expected += self.reference.run()
        for piece in pieces(data, chunks):
            self.relay.client_data(piece)
            self.pump(chunks)
        self.lands.clear()
        self.reference.cancels.clear()

    def pump(self, chunks=None):
        relay, server = self.relay, self.server
        for _ in range(200):
            moved = False
            if relay.to_server:
                server.feed(b"".join(relay.to_server))
                relay.to_server.clear()
                moved = True
            out = server.run()
            if out:
                for piece in pieces(out, chunks):
                    relay.server_data(piece)
                moved = True
            if relay.to_client:
                self.seen += b"".join(relay.to_client)
                relay.to_client.clear()
            actions, relay.actions[:] = relay.actions[:], []
            for action in actions:
                if isinstance(action, EndSession):
                    continue
                assert isinstance(action, CancelQuery), action
                if server.paused is not None:
                    server.resume(self.lands.popleft() if self.lands else False)
                relay.cancel_sent()
                moved = True
            if server.paused is not None and not moved:
                server.resume(False)          # no cancel came: the result goes on
                moved = True
            relay.events.clear()
            if not moved:
                return
        raise AssertionError("the relay and the server never went quiet")

    # ------------------------------------------------------------------------ rules --

    @rule(sql=SIMPLE, chunks=CHUNKS, lands=LANDS)
    def simple_query(self, sql, chunks, lands):
        self.send([Query(sql)], chunks, lands)

    @rule(sql=st.sampled_from(STATEMENTS), name=NAMES, portal=PORTALS, describe=st.booleans(),
          max_rows=st.sampled_from([0, 0, 1]), chunks=CHUNKS, lands=LANDS)
    def extended_statement(self, sql, name, portal, describe, max_rows, chunks, lands):
        if "big" in sql:
            max_rows = 0
        messages = [Parse(name, sql), Bind(portal, name)]
        if describe:
            messages.append(Describe("P", portal))
        messages.append(Execute(portal, max_rows))
        self.open_batch = True
        self.send(messages, chunks, lands)

    @rule(kind=st.sampled_from(["S", "P"]), name=st.sampled_from(["", "s1", "p1", "nope"]),
          what=st.sampled_from(["describe", "close", "bind", "execute"]))
    def loose_message(self, kind, name, what):
        message = {"describe": Describe(kind, name), "close": Close(kind, name),
                   "bind": Bind("p1", name), "execute": Execute(name if kind == "P" else "p1", 1)}[what]
        self.open_batch = True
        self.send([message], None, [False] * 4)

    @rule(chunks=CHUNKS)
    def sync(self, chunks):
        self.open_batch = False
        self.send([Sync()], chunks)

    @rule()
    def flush(self):
        self.send([Flush()], None)

    @rule()
    def function_call(self):
        self.send([FunctionCall(FUNCTION_OID, (), (), 0)], None)

    @rule(rows=st.integers(0, 3), fail=st.booleans(), early=st.booleans(), chunks=CHUNKS)
    def copy_in_simple(self, rows, fail, early, chunks):
        data = [CopyData(b"%d\n" % i) for i in range(rows)] + [CopyFail("no") if fail else CopyDone()]
        if early:
            self.send([Query("COPY t FROM STDIN"), *data], chunks)
        else:
            self.send([Query("COPY t FROM STDIN")], chunks)
            self.send(data, chunks)

    @rule(rows=st.integers(0, 3), fail=st.booleans(), libpq=st.booleans(), stray=st.booleans(),
          chunks=CHUNKS)
    def copy_in_extended(self, rows, fail, libpq, stray, chunks):
        """libpq: Parse/Bind/Describe/Execute/Sync, the data, CopyDone, Sync. Otherwise one Sync
        after CopyDone. A stray message inside the copy fails it."""
        start = [Parse("", "COPY t FROM STDIN"), Bind("", ""), Describe("P", ""), Execute("", 0)]
        if libpq:
            start.append(Sync())
        data = [CopyData(b"%d\n" % i) for i in range(rows)]
        if stray:
            data.append(Parse("", "SELECT n FROM small"))
        data += [CopyFail("no") if fail else CopyDone(), Sync()]
        self.send(start, chunks)
        self.send(data, chunks)
        self.open_batch = False

    # ------------------------------------------------------------------- invariants --

    @invariant()
    def the_client_sees_what_it_would_see(self):
        if bytes(self.seen) != bytes(self.expected):
            raise AssertionError("through the relay:\n" + _show(bytes(self.seen)) +
                                 "\nexpected:\n" + _show(bytes(self.expected)))

    @invariant()
    def nothing_blocked_reaches_the_server(self):
        assert not [sql for sql in self.server.seen_sql if "DROP" in sql]

    @invariant()
    def an_idle_session_expects_and_holds_nothing(self):
        if not self.open_batch and self.server.copy_in is None:
            assert not self.relay.pending, list(self.relay.pending)
            assert not self.relay.holds.active


def _show(data: bytes) -> str:
    from protocols.postgres import decode_backend
    return "\n".join(f"  {decode_backend(code, m[5:])!r}" for code, m in Framer(1 << 30).feed(data))


RelayAgainstModel.TestCase.settings = settings(
    max_examples=3000 if os.environ.get("WIREPROXY_SLOW") else 60, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestRelayAgainstModel = RelayAgainstModel.TestCase
