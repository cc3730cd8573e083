"""PgRelay as scripts: client sends X -> client receives Y; server gets Z (or nothing).

The relay is a pure object: these tests feed it bytes and read its outboxes, no sockets.
"""

from __future__ import annotations


import pytest

from protocols.postgres import (Authentication, BackendKeyData, Bind, BindComplete, CancelRequest,
                                Close, CloseComplete, CommandComplete, CopyData, CopyDone,
                                CopyInResponse, CopyOutResponse, DataRow, Describe, EmptyQueryResponse,
                                ErrorResponse, Execute, Field, Flush, Framer, FunctionCall,
                                FunctionCallResponse, GSSENCRequest, NoData, NoticeResponse,
                                NotificationResponse, ParameterDescription, ParameterStatus, Parse,
                                ParseComplete, PasswordMessage, PortalSuspended, Query, ReadyForQuery,
                                RowDescription, SASLInitialResponse, SASLResponse, SSLRequest,
                                StartupMessage, Sync, Terminate, decode_backend, decode_frontend)
from protocols.postgres.wire import UINT16, UINT32, frame
from wireproxy.auth import Identity
from wireproxy.pg.relay import Phase, PgRelay, Wait
from wireproxy.policy import Action, Decision

UPSTREAM = "db.internal:5432"
STARTUP = StartupMessage({"user": "alice", "database": "shop", "application_name": "script"})
KEY = BackendKeyData(4242, b"\x0a\x0b\x0c\x0d")
SERVER_HELLO = [Authentication(0), ParameterStatus("server_version", "16.2"),
                ParameterStatus("client_encoding", "UTF8"), KEY, ReadyForQuery("I")]


# ------------------------------------------------------------------------------ helpers -----

ALLOW = Decision(Action.ALLOW)
BLOCK_DROP = Decision(Action.BLOCK, "no-drop", "DROP is not allowed", ("no-drop",))
AUDIT_DELETE = Decision(Action.AUDIT, "audit-delete", "", ("audit-delete",))


class FakeJudge:
    """Decides by substring: the first needle found in the SQL picks the decision.

    Also has what the relay's Judge protocol grew for prepared statements and fast-path calls
    (`version`, `parse(sql, name)`, `close`, `function`), all allowing."""

    version = 0

    def __init__(self, rules: dict[str, Decision]):
        self.rules = rules
        self.seen: list[tuple[str, str]] = []

    def _decide(self, sql: str) -> Decision:
        for needle, decision in self.rules.items():
            if needle in sql:
                return decision
        return ALLOW

    def query(self, sql: str) -> Decision:
        self.seen.append(("query", sql))
        return self._decide(sql)

    def parse(self, sql: str, name: str = "") -> Decision:
        self.seen.append(("parse", sql))
        return self._decide(sql)

    def close(self, name: str) -> None:
        self.seen.append(("close", name))

    def function(self, name: str | None) -> Decision:
        self.seen.append(("function", name or ""))
        return ALLOW


def wire(*messages) -> bytes:
    return b"".join(m.encode() for m in messages)


def take(relay: PgRelay) -> tuple[bytes, bytes]:
    """What the relay queued for the client and the server since the last take; clears both."""
    client, server = b"".join(relay.to_client), b"".join(relay.to_server)
    relay.to_client.clear()
    relay.to_server.clear()
    return client, server


def decoded(data: bytes, decode) -> list:
    items = Framer(1 << 30).feed(data)
    assert b"".join(chunk for _, chunk in items) == data
    return [decode(code, chunk[5:]) for code, chunk in items]


def backend(data: bytes) -> list:
    return decoded(data, decode_backend)


def frontend(data: bytes) -> list:
    return decoded(data, decode_frontend)


def connected(judge: FakeJudge | None = None, **kwargs) -> PgRelay:
    """A relay past startup. It keeps its expectations (what these tests look at) whenever it has
    something to inspect with, so by default it gets an allow-everything judge; `plain()` below is
    the relay of a listener with no rules and no log."""
    judge = judge if judge is not None else FakeJudge({})
    relay = PgRelay(upstream=UPSTREAM, judge_factory=lambda user: judge, **kwargs)
    relay.client_data(STARTUP.encode())
    relay.server_data(wire(*SERVER_HELLO))
    assert relay.phase is Phase.READY
    take(relay)
    relay.events.clear()
    judge.seen.clear()              # the startup's settings, judged as SETs (test_startup_settings.py)
    return relay


def fatal(data: bytes) -> ErrorResponse:
    (error,) = backend(data)
    assert isinstance(error, ErrorResponse)
    assert error.severity == "FATAL"
    return error


def waits(relay: PgRelay) -> list[Wait]:
    return [p.wait for p in relay.pending]


# ------------------------------------------------------------------------------ startup -----

@pytest.mark.parametrize("request_type", [SSLRequest, GSSENCRequest])
def test_encryption_request_is_answered_N_and_the_startup_is_forwarded_verbatim(request_type):
    relay = PgRelay(upstream=UPSTREAM)
    relay.client_data(request_type().encode())
    assert take(relay) == (b"N", b"")
    assert relay.phase is Phase.STARTUP and not relay.wants_upstream

    relay.client_data(STARTUP.encode())
    assert take(relay) == (b"", STARTUP.encode())
    assert relay.wants_upstream and relay.phase is Phase.AUTH
    assert relay.startup == STARTUP
    assert relay.events == [{"event": "startup", "user": "alice", "database": "shop",
                             "application_name": "script"}]


def test_gssenc_then_ssl_then_startup_like_libpq_prefer():
    relay = PgRelay(upstream=UPSTREAM)
    relay.client_data(GSSENCRequest().encode())
    relay.client_data(SSLRequest().encode())
    relay.client_data(STARTUP.encode())
    assert take(relay) == (b"NN", STARTUP.encode())
    assert relay.wants_upstream


def test_ssl_request_and_startup_in_one_chunk():
    relay = PgRelay(upstream=UPSTREAM)
    relay.client_data(SSLRequest().encode() + STARTUP.encode())
    assert take(relay) == (b"N", STARTUP.encode())
    assert relay.wants_upstream


def test_startup_byte_at_a_time():
    relay = PgRelay(upstream=UPSTREAM)
    data = SSLRequest().encode() + STARTUP.encode()
    for i in range(len(data)):
        relay.client_data(data[i:i + 1])
    assert take(relay) == (b"N", STARTUP.encode())
    assert relay.wants_upstream


def test_startup_followed_at_once_by_a_password_in_the_same_chunk():
    relay = PgRelay(upstream=UPSTREAM)
    password = PasswordMessage(b"secret\0").encode()
    relay.client_data(STARTUP.encode() + password[:4])
    assert take(relay) == (b"", STARTUP.encode())
    relay.client_data(password[4:])
    assert take(relay) == (b"", password)


def test_database_defaults_to_user_in_the_startup_event():
    relay = PgRelay(upstream=UPSTREAM)
    relay.client_data(StartupMessage({"user": "bob"}).encode())
    assert relay.events == [{"event": "startup", "user": "bob", "database": "bob", "application_name": ""}]


def test_judge_factory_is_called_with_the_claimed_identity():
    users = []
    relay = PgRelay(upstream=UPSTREAM, judge_factory=lambda who: users.append(who) or FakeJudge({}))
    relay.client_data(STARTUP.encode())
    assert users == [Identity("alice", frozenset(), "claimed")]


@pytest.mark.parametrize("secret", [b"\x01\x02\x03\x04", bytes(range(32))])
def test_cancel_request_is_kept_and_the_connection_closes(secret):
    relay = PgRelay(upstream=UPSTREAM)
    relay.client_data(CancelRequest(4242, secret).encode())
    assert relay.cancel_request == CancelRequest(4242, secret)
    assert relay.close_reason and relay.phase is Phase.CLOSED
    assert take(relay) == (b"", b"")
    assert not relay.wants_upstream


def test_protocol_2_startup_is_refused_with_0A000():
    relay = PgRelay(upstream=UPSTREAM)
    relay.client_data(StartupMessage({"user": "alice"}, version=2 << 16).encode())
    client, server = take(relay)
    error = fatal(client)
    assert error.sqlstate == "0A000" and "unsupported frontend protocol 2.0" in error.message
    assert server == b"" and relay.phase is Phase.CLOSED and not relay.wants_upstream


def test_startup_without_user_is_refused_with_28000():
    relay = PgRelay(upstream=UPSTREAM)
    relay.client_data(StartupMessage({"database": "shop"}).encode())
    client, server = take(relay)
    assert fatal(client).sqlstate == "28000"
    assert server == b"" and relay.phase is Phase.CLOSED


@pytest.mark.parametrize("packet", [b"\0\0\0\3", b"\0\0\0\0garbage", b"\x7f\xff\xff\xff",
                                    b"Q\0\0\0\x0dSELECT 1\0"])
def test_a_bad_startup_packet_is_refused_with_08P01(packet):
    relay = PgRelay(upstream=UPSTREAM)
    relay.client_data(packet)
    client, server = take(relay)
    assert fatal(client).sqlstate == "08P01"
    assert server == b"" and relay.phase is Phase.CLOSED


# ---------------------------------------------------------------- authentication, ready ------

def test_startup_auth_ready_passes_byte_identical_both_ways():
    relay = PgRelay(upstream=UPSTREAM)
    relay.client_data(STARTUP.encode())
    assert take(relay) == (b"", STARTUP.encode())
    hello = wire(*SERVER_HELLO)
    relay.server_data(hello)
    assert take(relay) == (hello, b"")
    assert relay.phase is Phase.READY
    assert relay.backend_key == (4242, b"\x0a\x0b\x0c\x0d")
    assert relay.transaction_status == "I"
    assert {"event": "ready", "backend_pid": 4242} in relay.events
    assert not relay.pending


def test_md5_exchange_byte_at_a_time():
    relay = PgRelay(upstream=UPSTREAM)
    relay.client_data(STARTUP.encode())
    take(relay)
    for server_says, client_says in [
        (wire(Authentication(5, b"salt")), PasswordMessage(b"md5" + b"a" * 32 + b"\0").encode()),
    ]:
        for i in range(len(server_says)):
            relay.server_data(server_says[i:i + 1])
        assert take(relay) == (server_says, b"")
        for i in range(len(client_says)):
            relay.client_data(client_says[i:i + 1])
        assert take(relay) == (b"", client_says)
    hello = wire(*SERVER_HELLO)
    for i in range(len(hello)):
        relay.server_data(hello[i:i + 1])
    assert take(relay) == (hello, b"")
    assert relay.phase is Phase.READY and relay.backend_key == (4242, b"\x0a\x0b\x0c\x0d")


def test_scram_exchange_passes_untouched():
    relay = PgRelay(upstream=UPSTREAM)
    relay.client_data(STARTUP.encode())
    take(relay)
    script = [
        (Authentication.sasl(["SCRAM-SHA-256"]), SASLInitialResponse("SCRAM-SHA-256", b"n,,n=,r=abc")),
        (Authentication(11, b"r=abcdef,s=c2FsdA==,i=4096"), SASLResponse(b"c=biws,r=abcdef,p=proof")),
    ]
    for server_message, client_message in script:
        relay.server_data(server_message.encode())
        assert take(relay) == (server_message.encode(), b"")
        assert relay.phase is Phase.AUTH
        relay.client_data(client_message.encode())
        assert take(relay) == (b"", client_message.encode())
    rest = wire(Authentication(12, b"v=signature"), *SERVER_HELLO)
    relay.server_data(rest)
    assert take(relay) == (rest, b"")
    assert relay.phase is Phase.READY


def test_a_longer_backend_secret_is_kept_whole():
    relay = PgRelay(upstream=UPSTREAM)
    relay.client_data(STARTUP.encode())
    relay.server_data(wire(Authentication(0), BackendKeyData(7, bytes(range(32))), ReadyForQuery("I")))
    assert relay.backend_key == (7, bytes(range(32)))


def test_authentication_failure_passes_to_the_client():
    relay = PgRelay(upstream=UPSTREAM)
    relay.client_data(STARTUP.encode())
    take(relay)
    failure = ErrorResponse.make("28P01", 'password authentication failed for user "alice"', "FATAL").encode()
    relay.server_data(failure)
    assert take(relay) == (failure, b"")


# ------------------------------------------------------------------ simple query flow --------

RESULT = [
    RowDescription((Field("id", 16384, 1, 23, 4), Field("name", 16384, 2, 25))),
    DataRow.from_values([b"1", b"one"]),
    DataRow.from_values([b"2", None]),
    DataRow.from_values([b"3", b"x" * 1000]),
    CommandComplete("SELECT 3"),
    ReadyForQuery("I"),
]


@pytest.mark.parametrize("chunk", [None, 1, 7, 64])
def test_a_result_passes_byte_identical_and_nothing_stays_pending(chunk):
    relay = connected()
    query = Query("SELECT id, name FROM t").encode()
    relay.client_data(query)
    assert take(relay) == (b"", query)
    assert waits(relay) == [Wait.QUERY] and relay.busy
    answer = wire(*RESULT)
    if chunk is None:
        relay.server_data(answer)
    else:
        for i in range(0, len(answer), chunk):
            relay.server_data(answer[i:i + chunk])
    client, server = take(relay)
    assert client == answer and server == b""
    assert not relay.pending and not relay.busy
    assert relay.close_reason is None


def test_several_simple_queries_pipelined():
    relay = connected()
    relay.client_data(wire(Query("SELECT 1"), Query("BEGIN"), Query("SELECT 2")))
    assert waits(relay) == [Wait.QUERY] * 3
    relay.server_data(wire(*RESULT))
    assert waits(relay) == [Wait.QUERY] * 2
    relay.server_data(wire(CommandComplete("BEGIN"), ReadyForQuery("T")))
    assert relay.transaction_status == "T"
    relay.server_data(wire(EmptyQueryResponse(), ReadyForQuery("T")))
    assert not relay.pending


def test_a_server_error_in_a_simple_query_passes_unchanged():
    relay = connected()
    relay.client_data(Query("SELECT * FROM nope").encode())
    take(relay)
    answer = wire(ErrorResponse.make("42P01", 'relation "nope" does not exist'), ReadyForQuery("I"))
    relay.server_data(answer)
    assert take(relay) == (answer, b"")
    assert not relay.pending


def test_notices_notifications_and_parameter_status_pass_at_any_time():
    relay = connected()
    unsolicited = wire(NoticeResponse.make("01000", "hello"), NotificationResponse(99, "chan", "payload"),
                       ParameterStatus("TimeZone", "UTC"))
    relay.server_data(unsolicited)
    assert take(relay) == (unsolicited, b"")
    assert not relay.pending


def test_copy_from_stdin_passes_byte_identical():
    relay = connected()
    relay.client_data(Query("COPY t FROM STDIN").encode())
    relay.server_data(CopyInResponse(0, (0, 0)).encode())
    rows = wire(*(CopyData(b"%d\tname %d\n" % (i, i)) for i in range(100)), CopyDone())
    for i in range(0, len(rows), 13):
        relay.client_data(rows[i:i + 13])
    client, server = take(relay)
    assert client == CopyInResponse(0, (0, 0)).encode()
    assert server == Query("COPY t FROM STDIN").encode() + rows
    relay.server_data(wire(CommandComplete("COPY 100"), ReadyForQuery("I")))
    assert not relay.pending


def test_copy_to_stdout_passes_byte_identical():
    relay = connected()
    relay.client_data(Query("COPY t TO STDOUT").encode())
    answer = wire(CopyOutResponse(0, (0,)), *(CopyData(b"row %d\n" % i) for i in range(50)), CopyDone(),
                  CommandComplete("COPY 50"), ReadyForQuery("I"))
    relay.server_data(answer)
    assert take(relay)[0] == answer
    assert not relay.pending


def test_function_call_waits_for_ready():
    relay = plain()        # with a judge, a FunctionCall's OID is looked up first (tested below)
    relay.client_data(FunctionCall(1598, (), (), 0).encode())
    assert relay.busy
    relay.server_data(wire(FunctionCallResponse(None), ReadyForQuery("I")))
    assert not relay.busy


def test_terminate_is_forwarded_and_closes():
    relay = connected()
    relay.client_data(Terminate().encode() + Query("SELECT 'after'").encode())
    assert take(relay) == (b"", Terminate().encode())
    assert relay.phase is Phase.CLOSED and relay.close_reason == "client terminated"


# ---------------------------------------------------------------- extended protocol ---------

def extended_batch(n: int = 3) -> bytes:
    messages = []
    for i in range(n):
        messages += [Parse(f"s{i}", f"SELECT ${i + 1}::int", (23,)), Bind(f"p{i}", f"s{i}", (0,), (b"%d" % i,), ()),
                     Describe("P", f"p{i}"), Execute(f"p{i}", 0)]
    return wire(*messages, Sync())


def extended_answers(n: int = 3) -> bytes:
    messages = []
    for i in range(n):
        messages += [ParseComplete(), BindComplete(), RowDescription((Field("int4", type_oid=23),)),
                     DataRow.from_values([b"%d" % i]), CommandComplete("SELECT 1")]
    return wire(*messages, ReadyForQuery("I"))


def test_an_extended_pipeline_leaves_nothing_pending():
    relay = connected()
    batch = extended_batch()
    relay.client_data(batch)
    assert take(relay) == (b"", batch)
    assert waits(relay) == [Wait.PARSE, Wait.BIND, Wait.DESCRIBE, Wait.EXECUTE] * 3 + [Wait.SYNC]
    answers = extended_answers()
    for i in range(len(answers)):
        relay.server_data(answers[i:i + 1])
    assert take(relay) == (answers, b"")
    assert not relay.pending


def test_describe_statement_close_flush_and_portal_suspended():
    relay = connected()
    relay.client_data(wire(Parse("s", "SELECT 1"), Describe("S", "s"), Bind("p", "s"), Execute("p", 1),
                           Flush(), Close("P", "p"), Close("S", "s"), Sync()))
    assert waits(relay) == [Wait.PARSE, Wait.DESCRIBE, Wait.BIND, Wait.EXECUTE, Wait.CLOSE, Wait.CLOSE,
                            Wait.SYNC]
    relay.server_data(wire(ParseComplete(), ParameterDescription(()), NoData(), BindComplete(),
                           DataRow.from_values([b"1"]), PortalSuspended()))
    assert waits(relay) == [Wait.CLOSE, Wait.CLOSE, Wait.SYNC]
    relay.server_data(wire(CloseComplete(), CloseComplete(), ReadyForQuery("I")))
    assert not relay.pending


def test_a_server_error_mid_batch_pops_expectations_up_to_sync():
    relay = connected()
    relay.client_data(extended_batch() + extended_batch(1))
    take(relay)
    first = wire(ParseComplete(), BindComplete(), RowDescription((Field("int4", type_oid=23),)),
                 DataRow.from_values([b"0"]), CommandComplete("SELECT 1"), ParseComplete())
    error = ErrorResponse.make("22P02", 'invalid input syntax for type integer: "x"').encode()
    relay.server_data(first + error)
    assert waits(relay) == [Wait.SYNC] + [Wait.PARSE, Wait.BIND, Wait.DESCRIBE, Wait.EXECUTE, Wait.SYNC]
    assert not relay.discarding
    relay.server_data(ReadyForQuery("I").encode())
    assert take(relay) == (first + error + ReadyForQuery("I").encode(), b"")
    assert waits(relay) == [Wait.PARSE, Wait.BIND, Wait.DESCRIBE, Wait.EXECUTE, Wait.SYNC]
    relay.server_data(extended_answers(1))
    assert not relay.pending


def test_an_error_before_the_sync_was_sent_discards_until_sync():
    relay = connected()
    relay.client_data(wire(Parse("", "SELEC 1"), Bind("", ""), Execute(""), Flush()))
    relay.server_data(ErrorResponse.make("42601", 'syntax error at or near "SELEC"').encode())
    assert not relay.pending and relay.discarding
    # The server ignores everything up to Sync; so do the relay's expectations.
    relay.client_data(wire(Parse("", "SELECT 1"), Bind("", ""), Execute(""), Query("SELECT 2")))
    assert not relay.pending
    relay.client_data(Sync().encode())
    assert waits(relay) == [Wait.SYNC] and not relay.discarding
    relay.server_data(ReadyForQuery("I").encode())
    assert not relay.pending


def test_an_error_on_the_sync_itself():
    relay = connected()
    relay.client_data(wire(Query("BEGIN")))
    relay.server_data(wire(CommandComplete("BEGIN"), ReadyForQuery("T")))
    relay.client_data(wire(Parse("", "COMMIT"), Bind("", ""), Execute(""), Sync()))
    error = ErrorResponse.make("40001", "could not serialize access").encode()
    relay.server_data(wire(ParseComplete(), BindComplete()) + error)
    assert waits(relay) == [Wait.SYNC]
    relay.server_data(ReadyForQuery("I").encode())
    assert not relay.pending


def test_copy_in_through_the_extended_protocol():
    relay = connected()
    relay.client_data(wire(Parse("", "COPY t FROM STDIN"), Bind("", ""), Execute(""), Sync()))
    relay.server_data(wire(ParseComplete(), BindComplete(), CopyInResponse(0, (0,))))
    data = wire(CopyData(b"1\n"), CopyData(b"2\n"), CopyDone())
    relay.client_data(data)
    assert take(relay)[1].endswith(data)
    relay.server_data(wire(CommandComplete("COPY 2"), ReadyForQuery("I")))
    assert not relay.pending


# -------------------------------------------------------------------- malformed input -------

@pytest.mark.parametrize("bad", [
    b"Z\0\0\0\4",                                  # a backend type byte from the client
    b"\x00\0\0\0\4",
    b"Q\0\0\0\3",                                  # length below 4
    b"Q\0\0\0\0",
], ids=["type Z", "type NUL", "length 3", "length 0"])
def test_malformed_client_bytes_get_a_fatal_08P01_and_close(bad):
    relay = connected()
    relay.client_data(bad)
    client, server = take(relay)
    assert fatal(client).sqlstate == "08P01"
    assert server == b""
    assert relay.phase is Phase.CLOSED and relay.close_reason == "malformed client input"
    relay.client_data(Query("SELECT 1").encode())          # later bytes are ignored
    relay.server_data(ReadyForQuery("I").encode())
    assert take(relay) == (b"", b"")


def test_an_oversized_client_message_is_refused():
    relay = connected(max_message_size=1024)
    relay.client_data(b"Q" + UINT32.pack(1025))
    client, server = take(relay)
    error = fatal(client)
    assert error.sqlstate in ("08P01", "54000") and "limit" in error.message
    assert server == b"" and relay.phase is Phase.CLOSED


def test_malformed_server_bytes_close_with_08P01():
    relay = connected()
    relay.client_data(Query("SELECT 1").encode())
    take(relay)
    relay.server_data(b"T\0\0\0\2")
    client, _ = take(relay)
    error = fatal(client)
    assert error.sqlstate == "08P01"
    assert relay.phase is Phase.CLOSED and "malformed upstream" in relay.close_reason


def test_an_empty_ready_for_query_from_the_server_closes_cleanly():
    relay = connected()
    relay.server_data(b"Z\0\0\0\4")
    assert fatal(take(relay)[0]).sqlstate == "08P01"


def test_a_parse_with_40000_parameter_types_passes_a_judge():
    relay = connected(FakeJudge({}))
    types = (23,) * 40_000
    body = b"\0INSERT\0" + UINT16.pack(len(types)) + b"".join(UINT32.pack(t) for t in types)
    relay.client_data(frame(b"P", body))
    assert take(relay) == (b"", frame(b"P", body))


def test_client_eof_at_a_boundary_and_mid_message():
    relay = connected()
    relay.client_eof()
    assert relay.close_reason == "client closed" and relay.phase is Phase.CLOSED
    relay = connected()
    relay.client_data(Query("SELECT 1").encode()[:3])
    relay.client_eof()
    assert relay.close_reason == "client vanished mid-message"


def test_busy_while_the_server_owes_answers():
    relay = connected()
    assert not relay.busy
    relay.client_data(Query("SELECT pg_sleep(60)").encode())
    assert relay.busy


# ---------------------------------------------------------------------- upstream loss -------

def test_server_eof_at_a_boundary_gives_08006_naming_the_upstream():
    relay = connected()
    relay.client_data(Query("SELECT 1").encode())
    take(relay)
    relay.server_data(wire(RowDescription((Field("x"),)), DataRow.from_values([b"1"])))
    relay.server_eof()
    client, server = take(relay)
    messages = backend(client)
    assert isinstance(messages[-1], ErrorResponse)
    error = messages[-1]
    assert error.sqlstate == "08006" and error.severity == "FATAL" and UPSTREAM in error.message
    assert server == b"" and relay.phase is Phase.CLOSED


def test_server_eof_mid_message_just_closes():
    relay = connected()
    relay.client_data(Query("SELECT 1").encode())
    take(relay)
    relay.server_data(CommandComplete("SELECT 1").encode()[:4])
    relay.server_eof()
    assert take(relay) == (b"", b"")                 # an error now would corrupt the stream
    assert relay.phase is Phase.CLOSED and relay.close_reason == "upstream lost mid-message"


def test_server_eof_mid_streamed_datarow_just_closes():
    relay = connected()
    relay.client_data(Query("SELECT 1").encode())
    row = DataRow.from_values([b"x" * 100]).encode()
    relay.server_data(row[:50])
    take(relay)
    relay.server_eof()
    assert take(relay) == (b"", b"")
    assert relay.close_reason == "upstream lost mid-message"


def test_server_eof_after_the_servers_own_fatal_adds_nothing():
    relay = connected()
    shutdown = ErrorResponse.make("57P01", "terminating connection due to administrator command", "FATAL").encode()
    relay.server_data(shutdown)
    relay.server_eof()
    assert take(relay) == (shutdown, b"")
    assert relay.phase is Phase.CLOSED


def test_upstream_unreachable_gives_08001_naming_the_address():
    relay = PgRelay(upstream=UPSTREAM)
    relay.client_data(STARTUP.encode())
    take(relay)
    relay.upstream_unreachable("Connection refused")
    client, _ = take(relay)
    error = fatal(client)
    assert error.sqlstate == "08001"
    assert UPSTREAM in error.message
    assert error.fields.get("D") == "Connection refused"
    assert relay.phase is Phase.CLOSED and "Connection refused" in relay.close_reason


def test_refuse():
    relay = PgRelay(upstream=UPSTREAM)
    relay.refuse("53300", "too many connections", "limit")
    assert fatal(take(relay)[0]).sqlstate == "53300"
    assert relay.close_reason == "limit"


# ------------------------------------------------------------------------- the judge --------

def test_allowed_query_is_forwarded_byte_identical_without_an_event():
    judge = FakeJudge({"DROP": BLOCK_DROP})
    relay = connected(judge)
    query = Query("SELECT * FROM t").encode()
    relay.client_data(query)
    assert take(relay) == (b"", query)
    assert judge.seen == [("query", "SELECT * FROM t")]
    assert relay.events == []


def test_a_blocked_query_never_reaches_the_server_and_the_client_gets_42501():
    judge = FakeJudge({"DROP": BLOCK_DROP})
    relay = connected(judge)
    relay.client_data(Query("DROP TABLE customers").encode())
    client, server = take(relay)
    assert client == b""
    (substitute,) = frontend(server)
    assert isinstance(substitute, Query) and substitute.sql.startswith("wireproxy blocked")
    assert b"DROP" not in server and b"customers" not in server
    assert relay.events == [{"event": "decision", "action": "block", "rule": "no-drop", "matched": ["no-drop"],
                             "statement": "DROP TABLE customers", "path": "simple"}]

    ready = ReadyForQuery("I").encode()
    relay.server_data(ErrorResponse.make("42601", 'syntax error at or near "wireproxy"', P="1").encode() + ready)
    client, server = take(relay)
    error, after = backend(client)
    assert isinstance(error, ErrorResponse)
    assert error.sqlstate == "42501" and error.severity == "ERROR"
    assert error.message == BLOCK_DROP.client_message()
    assert client.endswith(ready) and after == ReadyForQuery("I")
    assert server == b"" and not relay.pending and relay.phase is Phase.READY


def test_only_the_blocked_query_error_is_rewritten():
    judge = FakeJudge({"DROP": BLOCK_DROP})
    relay = connected(judge)
    relay.client_data(wire(Query("DROP TABLE t"), Query("SELECT * FROM nope")))
    take(relay)
    theirs = ErrorResponse.make("42P01", 'relation "nope" does not exist').encode()
    relay.server_data(wire(ErrorResponse.make("42601", "syntax error"), ReadyForQuery("I")) + theirs
                      + ReadyForQuery("I").encode())
    client, _ = take(relay)
    first, ready1, second, ready2 = backend(client)
    assert first.sqlstate == "42501"
    assert second.sqlstate == "42P01" and client.endswith(theirs + ReadyForQuery("I").encode())


def test_a_fatal_server_error_for_a_blocked_query_passes_unchanged():
    judge = FakeJudge({"DROP": BLOCK_DROP})
    relay = connected(judge)
    relay.client_data(Query("DROP TABLE t").encode())
    shutdown = ErrorResponse.make("57P01", "terminating connection due to administrator command", "FATAL").encode()
    relay.server_data(shutdown)
    assert take(relay)[0] == shutdown


def test_a_blocked_query_inside_a_failed_transaction_still_reads_as_blocked():
    judge = FakeJudge({"DROP": BLOCK_DROP})
    relay = connected(judge)
    relay.client_data(Query("DROP TABLE t").encode())
    take(relay)
    relay.server_data(wire(ErrorResponse.make("25P02", "current transaction is aborted"), ReadyForQuery("E")))
    error, ready = backend(take(relay)[0])
    assert error.sqlstate == "42501" and ready == ReadyForQuery("E")
    assert relay.transaction_status == "E"


def test_a_blocked_parse_in_a_pipeline_rewrites_only_its_own_error():
    judge = FakeJudge({"DROP": BLOCK_DROP})
    relay = connected(judge)
    batch = wire(Parse("", "SELECT 1"), Bind("", ""), Execute(""),
                 Parse("bad", "DROP TABLE customers", (25,)), Bind("", "bad"), Execute(""), Sync())
    relay.client_data(batch)
    client, server = take(relay)
    sent = frontend(server)
    assert [type(m) for m in sent] == [Parse, Bind, Execute, Parse, Bind, Execute, Sync]
    assert sent[0] == Parse("", "SELECT 1")
    assert sent[3].statement == "bad" and sent[3].sql.startswith("wireproxy blocked")
    assert b"DROP" not in server and b"customers" not in server
    assert [(m["action"], m["path"], m["statement"]) for m in relay.events] == [
        ("block", "extended", "DROP TABLE customers")]
    assert judge.seen == [("parse", "SELECT 1"), ("parse", "DROP TABLE customers")]

    allowed = wire(ParseComplete(), BindComplete(), DataRow.from_values([b"1"]), CommandComplete("SELECT 1"))
    relay.server_data(allowed + ErrorResponse.make("42601", "syntax error").encode() + ReadyForQuery("I").encode())
    client, server = take(relay)
    assert client.startswith(allowed)
    error, ready = backend(client[len(allowed):])
    assert error.sqlstate == "42501" and error.message == BLOCK_DROP.client_message()
    assert ready == ReadyForQuery("I") and client.endswith(ReadyForQuery("I").encode())
    assert not relay.pending

    # The next batch's own error is the server's, untouched.
    relay.client_data(wire(Parse("", "SELECT nope"), Sync()))
    theirs = ErrorResponse.make("42703", 'column "nope" does not exist').encode()
    relay.server_data(theirs + ReadyForQuery("I").encode())
    assert take(relay)[0] == theirs + ReadyForQuery("I").encode()


def test_a_blocked_parse_after_an_earlier_error_in_the_batch_is_not_rewritten():
    judge = FakeJudge({"DROP": BLOCK_DROP})
    relay = connected(judge)
    relay.client_data(wire(Parse("", "SELEC 1"), Parse("x", "DROP TABLE t"), Sync()))
    theirs = ErrorResponse.make("42601", 'syntax error at or near "SELEC"').encode()
    relay.server_data(theirs + ReadyForQuery("I").encode())
    assert take(relay)[0] == theirs + ReadyForQuery("I").encode()
    assert not relay.pending


def test_an_audited_query_is_forwarded_and_leaves_an_event():
    judge = FakeJudge({"DELETE": AUDIT_DELETE})
    relay = connected(judge)
    query = Query("DELETE FROM logs WHERE id = 1").encode()
    relay.client_data(query)
    assert take(relay) == (b"", query)
    assert relay.events == [{"event": "decision", "action": "audit", "rule": "audit-delete",
                             "matched": ["audit-delete"], "statement": "DELETE FROM logs WHERE id = 1",
                             "path": "simple"}]
    answer = wire(CommandComplete("DELETE 1"), ReadyForQuery("I"))
    relay.server_data(answer)
    assert take(relay)[0] == answer


def test_an_audited_parse_is_forwarded_and_leaves_an_event():
    judge = FakeJudge({"DELETE": AUDIT_DELETE})
    relay = connected(judge)
    parse = Parse("d", "DELETE FROM logs", (23,)).encode()
    relay.client_data(parse)
    assert take(relay) == (b"", parse)
    assert [e["path"] for e in relay.events] == ["extended"]


@pytest.mark.parametrize("bad", [
    frame(b"F", b"\0\0"),                      # FunctionCall cut short
    frame(b"P", b"\0SELECT 1"),                 # Parse without terminators
], ids=["function call", "parse"])
def test_other_malformed_messages_with_a_judge_are_refused(bad):
    relay = connected(FakeJudge({}))
    relay.client_data(bad)
    assert fatal(take(relay)[0]).sqlstate == "08P01"
    assert relay.phase is Phase.CLOSED


@pytest.mark.parametrize("bad", [
    frame(b"B", b"abc"),                         # Bind without any terminator
    frame(b"C", b""),                            # Close with an empty body
    frame(b"C", b"Sx"),                          # Close of a statement without a terminator
], ids=["bind", "close empty", "close unterminated"])
def test_a_malformed_bind_or_close_with_a_judge_is_refused(bad):
    relay = connected(FakeJudge({}))
    relay.client_data(bad)
    assert fatal(take(relay)[0]).sqlstate == "08P01"
    assert relay.phase is Phase.CLOSED


def test_a_malformed_query_with_a_judge_is_refused():
    relay = connected(FakeJudge({}))
    relay.client_data(b"Q\0\0\0\x08abcd")             # no terminator
    assert fatal(take(relay)[0]).sqlstate == "08P01"
    assert relay.phase is Phase.CLOSED



def plain() -> PgRelay:
    relay = PgRelay(upstream=UPSTREAM)
    relay.client_data(STARTUP.encode())
    relay.server_data(wire(*SERVER_HELLO))
    take(relay)
    relay.events.clear()
    return relay


def test_a_plain_relay_forwards_byte_identical_and_knows_when_the_server_owes_answers():
    relay = plain()
    batch = wire(Query("SELECT 1"), Parse("", "SELECT $1"), Bind("", ""), Describe("P", ""), Execute(""), Sync())
    relay.client_data(batch)
    assert take(relay) == (b"", batch) and relay.busy and not relay.pending
    answer = wire(*RESULT) + wire(ParseComplete(), BindComplete(), NoData(), CommandComplete("SELECT 1"),
                                  ReadyForQuery("I"))
    relay.server_data(answer)
    assert take(relay) == (answer, b"") and not relay.busy


def test_a_plain_relay_still_refuses_malformed_messages():
    relay = plain()
    relay.client_data(b"C\x00\x00\x00\x06Sx")       # Close without its terminator
    assert fatal(take(relay)[0]).sqlstate == "08P01" and relay.phase is Phase.CLOSED
