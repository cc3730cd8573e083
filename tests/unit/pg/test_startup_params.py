"""Startup-packet settings judged as the SETs they stand for; replication connections refused."""

from __future__ import annotations

import pytest

from protocols.postgres import ErrorResponse, Framer, StartupMessage, decode_backend
from wireproxy.config.rulefile import parse_rules
from wireproxy.pg.relay import Phase, PgRelay
from wireproxy.pg.startup_settings import BadOptions, as_set, settings_of
from wireproxy.policy.engine import Policy

RULES = """
[[rule]]
id = "no-role-switch"
action = "block"
statements = ["set"]
flags = ["set_role"]
"""


def test_settings_of_reads_parameters_and_options_as_libpq_sends_them():
    params = {"user": "u", "database": "d", "application_name": "app", "_pq_.x": "1",
              "options": r"-c search_path=a\ b --statement-timeout=5s -cwork_mem=64MB"}
    assert settings_of(params) == [("application_name", "app"), ("search_path", "a b"),
                                   ("statement_timeout", "5s"), ("work_mem", "64MB")]
    with pytest.raises(BadOptions):
        settings_of({"user": "u", "options": "-e"})
    with pytest.raises(BadOptions):
        settings_of({"user": "u", "options": "-c"})


def test_as_set_quotes_names_and_values():
    assert as_set("search_path", "x'; drop table t; --") == \
        "SET \"search_path\" TO 'x''; drop table t; --'"
    assert as_set('my.opt"x', "v") == "SET \"my\".\"opt\"\"x\" TO 'v'"


def _relay(rules: str | None = None, **kwargs) -> PgRelay:
    judge_factory = None
    if rules is not None:
        policy = Policy(parse_rules(rules))
        judge_factory = lambda who: policy.session(who.name)   # noqa: E731
    return PgRelay(upstream="db:5432", judge_factory=judge_factory, **kwargs)


def _fatal(relay: PgRelay) -> ErrorResponse:
    (code, packet), = Framer(1 << 20).feed(b"".join(relay.to_client))
    error = decode_backend(code, packet[5:])
    assert error.severity == "FATAL" and relay.phase is Phase.CLOSED and relay.to_server == []
    return error


def test_a_blocked_setting_refuses_the_session_before_anything_reaches_the_server():
    relay = _relay(RULES)
    relay.client_data(StartupMessage({"user": "agent", "options": "-c role=postgres"}).encode())
    error = _fatal(relay)
    assert error.sqlstate == "42501" and error.message.startswith("blocked by wireproxy rule no-role-switch")


def test_allowed_settings_pass_with_the_startup():
    relay = _relay(RULES)
    relay.client_data(StartupMessage({"user": "agent", "options": "-c search_path=app"}).encode())
    assert relay.phase is Phase.AUTH and relay.to_server


def test_replication_connections_are_refused_unless_allowed():
    relay = _relay()
    relay.client_data(StartupMessage({"user": "u", "replication": "database"}).encode())
    assert "replication" in _fatal(relay).message
    allowed = _relay(allow_replication=True)
    allowed.client_data(StartupMessage({"user": "u", "replication": "true"}).encode())
    assert allowed.phase is Phase.AUTH
    plain = _relay()
    plain.client_data(StartupMessage({"user": "u", "replication": "false"}).encode())
    assert plain.phase is Phase.AUTH
