"""The relay's collaborators driven alone, without a relay: enforcement, limits, row masks,
recording, holds and lookups."""

from __future__ import annotations

import pytest

from protocols.postgres import (Bind, CommandComplete, DataRow, ErrorResponse, Field, NoticeResponse,
                                RowDescription, decode_backend)
from wireproxy.masking import Masker, MaskSpec
from wireproxy.pg import enforcement, limits as limit_verdicts
from wireproxy.pg.enforcement import Enforcer
from wireproxy.pg.holds import Holds
from wireproxy.pg.limits import VolumeLimits
from wireproxy.pg.lookups import Lookup, function_name, function_name_sql
from wireproxy.pg.protocol import Decided, LimitHit, Pending, Recorded, Wait
from wireproxy.pg.recording import Recorder
from wireproxy.pg.rowmasks import REFUSED, RowMasks
from wireproxy.policy import Action, Decision, Limits
from wireproxy.policy.decision import ALLOW

BLOCK = Decision(Action.BLOCK, "no-drop", "not here", ("no-drop",))


class Judge:
    version = 1
    standard_conforming_strings = True

    def __init__(self):
        self.closed = []

    def query(self, sql):
        return BLOCK if "DROP" in sql else ALLOW

    parse = lambda self, sql, name="": self.query(sql)        # noqa: E731

    def close(self, name):
        self.closed.append(name)

    def function(self, name):
        return ALLOW if name == "pg_catalog.random" else BLOCK


# ------------------------------------------------------------------------ enforcement --

def test_enforcement_substitutes_a_blocked_statement_and_swaps_its_error():
    events = []
    enforcer = Enforcer(Judge(), emit=events.append)
    entry = Pending(Wait.QUERY)
    decision = enforcer.query("DROP TABLE t")
    sent = enforcer.enforce(decision, entry, "DROP TABLE t", "simple", b"original",
                            lambda: enforcement.substitute_query(decision.rule_id))
    assert b"DROP" not in sent and b"wireproxy blocked" in sent
    assert events == [Decided("block", "no-drop", ["no-drop"], "DROP TABLE t", "simple")]
    error = decode_backend(ord("E"), enforcer.swap_error(entry, b"E...")[5:])
    assert error.sqlstate == "42501" and error.message == "blocked by wireproxy rule no-drop: not here"
    assert entry.blocked is None                         # only the first error answers it


def test_enforcement_judges_a_statement_again_at_bind_after_a_reload():
    judge = Judge()
    enforcer = Enforcer(judge, emit=lambda e: None)
    enforcer.parse("s", "SELECT 1", b"")
    bind = Bind("p", "s").encode()
    assert enforcer.bind("p", "s", bind) is None         # same rules: nothing to enforce
    judge.version = 2
    assert enforcer.bind("p", "s", bind) is ALLOW        # judged again under the new rules
    assert enforcer.portals["p"].statement.rules_version == 2
    enforcer.close_statement("s")
    assert judge.closed == ["s"] and "s" not in enforcer.statements


def test_enforcement_fails_closed_when_the_session_log_cannot_be_written():
    enforcer = Enforcer(None, emit=lambda e: None, gate=lambda: "disk full")
    decision = enforcer.query("SELECT 1")
    assert decision.blocked and decision.rule_id == "session-log" and "disk full" in decision.message


def test_enforcement_applies_a_held_statements_verdict_once():
    enforcer = Enforcer(Judge(), emit=lambda e: None)
    held = Decision(Action.APPROVE, "ask", "", ("ask",))
    enforcer.block_with("SELECT 1", held, "denied by bob: no", "42501")
    entry = Pending(Wait.QUERY)
    decision = enforcer.query("SELECT 1")
    enforcer.enforce(decision, entry, "SELECT 1", "simple", b"x", lambda: b"substitute")
    assert entry.blocked == ("42501", "denied by bob: no")
    assert enforcer.query("SELECT 1") is ALLOW           # once only
    enforcer.allow_once("DROP TABLE t", held)
    assert enforcer.query("DROP TABLE t").allowed


# ------------------------------------------------------------------------------ limits --

def limited(max_rows=2, action=Action.BLOCK):
    return Decision(Action.ALLOW, limits=Limits(max_rows=max_rows, rule_ids=("cap",), action=action), facts=())


def test_limits_count_rows_and_cut_past_the_limit():
    events = []
    limits = VolumeLimits(events.append)
    entry = Pending(Wait.QUERY)
    limits.attach(limited(), entry)
    assert limits.active == 1
    verdicts = [limits.row(entry, 10) for _ in range(4)]
    assert verdicts == [limit_verdicts.PASS, limit_verdicts.PASS, limit_verdicts.CUT, limit_verdicts.DROP]
    assert events == [LimitHit("cap", "more than 2 rows", "block")]
    error = decode_backend(ord("E"), limits.cut_error(entry)[5:])
    assert error.sqlstate == "54000" and "cap" in error.message and limits.active == 0


def test_an_audit_limit_only_logs():
    limits = VolumeLimits(lambda e: None)
    entry = Pending(Wait.QUERY)
    limits.attach(limited(action=Action.AUDIT), entry)
    assert [limits.row(entry, 1) for _ in range(4)] == [limit_verdicts.PASS] * 4 and limits.active == 0


def test_a_refused_result_is_refused_once():
    limits = VolumeLimits(lambda e: None)
    entry = Pending(Wait.EXECUTE)
    assert limits.refuse(entry, "binary") is True and limits.refuse(entry, "binary") is False
    assert decode_backend(ord("E"), limits.cut_error(entry)[5:]).sqlstate == "42501"


# ---------------------------------------------------------------------------- row masks --

def masks() -> RowMasks:
    masker = Masker([MaskSpec("emails", columns=("email",), style="redact")]).for_user("alice")
    return RowMasks(masker)


def test_row_masks_plan_from_row_description_and_mask_rows():
    rm = masks()
    rm.row_description(None, RowDescription((Field("email", type_oid=25),)).encode())
    row = DataRow.from_values([b"alice@example.com"]).encode()
    masked = rm.row(None, row)
    assert b"alice" not in masked and decode_backend(ord("D"), masked[5:]).values == (b"****",)


def test_row_masks_use_a_portals_latest_description_and_refuse_rows_of_none():
    rm = masks()
    describe = Pending(Wait.DESCRIBE, kind="P", portal="p")
    rm.row_description(describe, RowDescription((Field("email", type_oid=25),)).encode())
    execute = Pending(Wait.EXECUTE, portal="p")
    assert b"****" in rm.row(execute, DataRow.from_values([b"x@y.com"]).encode())
    unknown = Pending(Wait.EXECUTE, portal="never-described")
    assert rm.row(unknown, DataRow.from_values([b"x@y.com"]).encode()) is REFUSED
    assert "not known" in rm.refuse_reason(unknown)


def test_row_masks_own_describe_only_when_the_portal_was_not_described():
    rm = masks()
    assert rm.describe_first("p") is True and rm.describe_first("p") is False
    rm.bound("p")
    assert rm.describe_first("p") is True


def test_row_masks_mask_error_and_notice_fields():
    rm = RowMasks(Masker([MaskSpec("e", detectors=("email",), style="redact")]).for_user("a"))
    notice = NoticeResponse.make("01000", "mail alice@example.com").encode()
    assert b"alice@example.com" not in rm.message(ord("N"), notice)
    assert rm.catalog_sql() is None                      # no column rule: no catalog lookup


# ---------------------------------------------------------------------------- recording --

def test_recording_builds_a_record_and_emits_it_complete():
    events, now = [], iter([1.0, 1.5])
    recorder = Recorder(events.append, clock=lambda: next(now), mask_param=str.upper, max_result_bytes=100)
    record = recorder.statement("SELECT $1", "extended", ALLOW,
                                recorder.params(Bind("", "", (0,), (b"secret",)).encode()))
    recorder.row(record, DataRow.from_values([b"a"]).encode())
    recorder.completion(record, CommandComplete("SELECT 3").encode())
    recorder.finish(record)
    (event,) = events
    assert isinstance(event, Recorded)
    assert event.record == {"sql": "SELECT $1", "protocol": "extended", "decision": "allow",
                            "params": ["SECRET"], "result_rows": [["a"]], "tag": "SELECT 3", "rows": 3,
                            "duration_ms": 500.0, "result_rows_omitted": 2}


def test_recording_notes_errors_and_stops_capturing_when_the_budget_is_spent():
    recorder = Recorder(lambda e: None, max_result_bytes=10)
    record = recorder.statement("x", "simple", BLOCK)
    recorder.error(record, ErrorResponse.make("42501", "no").encode())
    assert record["error"] == {"code": "42501", "message": "no"} and record["rules"] == ["no-drop"]
    recorder.row(record, DataRow.from_values([b"0123456789"]).encode())
    assert not recorder.capturing


# ------------------------------------------------------------------------ holds, lookups --

def test_holds_nest_and_give_back_input_in_order():
    holds = Holds()
    holds.hold()
    holds.hold()
    holds.keep([(1, b"a")])
    holds.keep([(2, b"b")])
    assert holds.release() is None and holds.active
    assert holds.release() == [(1, b"a"), (2, b"b")] and not holds.active
    with pytest.raises(RuntimeError):
        holds.release()


def test_function_name_lookups():
    assert "p.oid = 1598" in function_name_sql(1598)
    assert function_name([(b"pg_catalog.random",)]) == "pg_catalog.random"
    assert function_name([]) is None and function_name([(None,)]) is None
    seen = []
    lookup = Lookup("SELECT 1", seen.append)
    lookup.add_row(DataRow.from_values([b"x"]).encode())
    lookup.answered(lookup.rows)
    assert seen == [[(b"x",)]]
