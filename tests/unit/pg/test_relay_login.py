"""The relay's login phase: a client proving itself to wireproxy (SCRAM), TLS negotiation, and
what it sends upstream afterwards (its own startup, with the held role). Pure: no sockets."""

from __future__ import annotations

from protocols.postgres import (Authentication, ErrorResponse, Framer, Query, SASLInitialResponse,
                                SASLResponse, SSLRequest, StartupMessage, decode_backend, decode_startup)
from protocols.postgres.backend import AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL
from protocols.postgres.scram import ScramClient
from wireproxy.auth import Directory, Identity, UserEntry
from wireproxy.auth.scram import make_verifier
from wireproxy.config import PostgresListener, parse_address
from wireproxy.pg.access import Access
from wireproxy.pg.relay import Phase, PgRelay

from test_relay import SERVER_HELLO, take, wire

ALICE = UserEntry("alice", make_verifier("s3cret", iterations=64), ("oncall",))


def relay_with(*users: UserEntry, roles=None, **kwargs) -> PgRelay:
    listener = PostgresListener(parse_address("127.0.0.1:6432"), parse_address("127.0.0.1:5432"),
                                upstream_user="app", upstream_roles=roles or {})
    access = Access(listener, Directory(users=users), limiter=None)
    seen = []
    relay = PgRelay(upstream="db:5432", judge_factory=lambda who: seen.append(who), access=access, **kwargs)
    relay.seen = seen
    return relay


def backend(data: bytes) -> list:
    return [decode_backend(code, chunk[5:]) for code, chunk in Framer(1 << 20).feed(data)]


def log_in(relay: PgRelay, user: str, password: str) -> list:
    relay.client_data(StartupMessage({"user": user, "database": "shop"}).encode())
    (offer,) = backend(take(relay)[0])
    assert (offer.code, offer.mechanisms) == (AUTH_SASL, ["SCRAM-SHA-256"])
    scram = ScramClient(password)
    relay.client_data(SASLInitialResponse("SCRAM-SHA-256", scram.first_message()).encode())
    (challenge,) = backend(take(relay)[0])
    assert challenge.code == AUTH_SASL_CONTINUE
    relay.client_data(SASLResponse(scram.final_message(challenge.data)).encode())
    out = backend(take(relay)[0])
    if out and isinstance(out[0], Authentication) and out[0].code == AUTH_SASL_FINAL:
        scram.verify_server(out[0].data)
    return out


def test_scram_login_then_wireproxy_logs_in_upstream_as_the_held_role():
    relay = relay_with(ALICE)
    (final,) = log_in(relay, "alice", "s3cret")
    assert final.code == AUTH_SASL_FINAL
    assert relay.phase is Phase.AUTH and relay.wants_upstream
    assert relay.identity == Identity("alice", frozenset({"oncall"}), "scram")
    assert relay.seen == [relay.identity]                       # rules judge the proven identity
    assert relay.to_server == []                                # the pump logs in upstream itself
    upstream = decode_startup(relay.upstream_startup[4:])
    assert upstream.parameters == {"user": "app", "database": "shop"}
    relay.upstream_logged_in(wire(*SERVER_HELLO))               # AuthenticationOk and after
    assert relay.phase is Phase.READY
    assert backend(take(relay)[0])[0] == Authentication(0)


def test_wrong_password_and_unknown_user_get_the_same_fatal_28p01():
    answers = []
    for user, password in (("alice", "wrong"), ("mallory", "s3cret")):
        relay = relay_with(ALICE)
        (error,) = log_in(relay, user, password)
        assert isinstance(error, ErrorResponse) and error.severity == "FATAL"
        answers.append((error.sqlstate, error.message.replace(user, "NAME")))
        assert relay.phase is Phase.CLOSED and relay.upstream_startup is None and relay.seen == []
        assert relay.login_failure
    assert answers[0] == answers[1] == ("28P01", 'password authentication failed for user "NAME"')


def test_a_group_mapped_role_wins_over_the_default_user():
    relay = relay_with(ALICE, roles={"group:oncall": "app_admin", "bob": "app_ro"})
    log_in(relay, "alice", "s3cret")
    assert decode_startup(relay.upstream_startup[4:]).user == "app_admin"


def test_a_client_that_sends_a_query_instead_of_its_password_is_a_protocol_error():
    relay = relay_with(ALICE)
    relay.client_data(StartupMessage({"user": "alice"}).encode())
    take(relay)
    relay.client_data(Query("select 1").encode())
    (error,) = backend(take(relay)[0])
    assert (error.sqlstate, relay.close_reason) == ("08P01", "malformed client input")


def test_ssl_request_is_answered_s_when_tls_is_offered_and_n_otherwise():
    offered = PgRelay(upstream="db:5432", tls=True)
    offered.client_data(SSLRequest().encode())
    assert take(offered)[0] == b"S" and offered.start_tls
    offered.tls_started()
    offered.client_data(StartupMessage({"user": "alice"}).encode())
    assert offered.phase is Phase.AUTH

    plain = PgRelay(upstream="db:5432")
    plain.client_data(SSLRequest().encode())
    assert take(plain)[0] == b"N" and not plain.start_tls


def test_bytes_in_clear_after_ssl_request_are_refused():
    relay = PgRelay(upstream="db:5432", tls=True)
    relay.client_data(SSLRequest().encode() + StartupMessage({"user": "alice"}).encode())
    (error,) = backend(take(relay)[0])
    assert error.sqlstate == "08P01" and "unencrypted data after SSL request" in error.message
    assert relay.phase is Phase.CLOSED


def test_require_tls_refuses_a_plaintext_startup():
    relay = PgRelay(upstream="db:5432", tls=True, require_tls=True)
    relay.client_data(StartupMessage({"user": "alice"}).encode())
    (error,) = backend(take(relay)[0])
    assert error.sqlstate == "28000" and "requires TLS" in error.message
    assert relay.to_server == []
