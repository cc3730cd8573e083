"""The broker on its in-process store: submit, decide, time out, withdraw, window grants, and
the records it hands each session. Timeouts run on trio's MockClock (no real waiting)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from wireproxy.approvals import (AlreadyDecided, ApprovalError, ApprovalRequest, ApprovalUnavailable,
                                 Broker, NotAllowed, Outcome, UnknownApproval)
from wireproxy.approvals.model import Approval, check_approver, format_duration, parse_duration
from wireproxy.telemetry import metrics

EPOCH = 1_750_000_000.0


def wall() -> float:
    """Wall-clock seconds that move with trio's clock (a MockClock in these tests)."""
    return EPOCH + trio.current_time()


def request(user="alice", fingerprint="delete from t where id = ?", approvers=(), timeout=None, **more):
    return ApprovalRequest(user, "app", more.pop("statement", "DELETE FROM t WHERE id = 7"),
                           more.pop("rule", "ask-deletes"), approvers, timeout, fingerprint, **more)


@pytest.fixture
async def broker(nursery):
    b = Broker(clock=wall)
    await nursery.start(b.run)
    return b


async def test_approved_once_releases_the_waiter_and_records_both_events(broker):
    events = []
    pending_before = metrics.APPROVALS_PENDING.value()
    approved_before = metrics.APPROVAL_OUTCOMES.value(outcome="approved")
    ticket = await broker.submit(request(session_id="s1", client="10.0.0.5:5000"), on_event=events.append)
    assert ticket.id.startswith("ap-") and len(ticket.id) == 15
    assert [a.id for a in await broker.approvals()] == [ticket.id]
    assert metrics.APPROVALS_PENDING.value() == pending_before + 1
    assert events[0]["event"] == "requested" and events[0]["type"] == "approval"
    assert events[0]["statement"] == "DELETE FROM t WHERE id = 7" and events[0]["session"] == "s1"

    outcomes = []

    async def waiter():
        outcomes.append(await ticket.wait())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert outcomes == []
        decided = await broker.approve(ticket.id, "bob", "incident 42")
    assert outcomes == [Outcome(approved=True, approver="bob", reason="incident 42", grant="once")]
    assert decided.state == "approved" and (await broker.get(ticket.id)).approver == "bob"
    assert await broker.approvals() == []
    assert events[1]["event"] == "approved" and events[1]["approver"] == "bob"
    assert events[1]["reason"] == "incident 42" and events[1]["grant"] == "once"
    assert metrics.APPROVALS_PENDING.value() == pending_before
    assert metrics.APPROVAL_OUTCOMES.value(outcome="approved") == approved_before + 1
    assert await ticket.wait() == outcomes[0]                      # asking again gives the same answer
    assert broker.window_grant("alice", request().fingerprint) is None   # once is once


async def test_denied(broker):
    ticket = await broker.submit(request())
    await broker.deny(ticket.id, "bob", "not during business hours")
    outcome = await ticket.wait()
    assert not outcome.approved and not outcome.timed_out
    assert outcome.message == "denied by bob: not during business hours"
    with pytest.raises(AlreadyDecided, match="already denied"):
        await broker.approve(ticket.id, "carol")


async def test_no_self_approval_and_named_approvers(nursery):
    groups = {"dana": frozenset({"dba"})}
    broker = Broker(clock=wall, groups_of=lambda user: groups.get(user, frozenset()))
    await nursery.start(broker.run)
    ticket = await broker.submit(request(approvers=("bob", "group:dba")))
    with pytest.raises(NotAllowed, match="alice asked for this approval"):
        await broker.approve(ticket.id, "alice")
    with pytest.raises(NotAllowed, match="carol is not an approver for rule ask-deletes"):
        await broker.approve(ticket.id, "carol")
    with pytest.raises(NotAllowed):
        await broker.deny(ticket.id, "carol")
    assert (await broker.get(ticket.id)).pending                     # refusals changed nothing
    await broker.approve(ticket.id, "dana")                          # by group
    assert (await ticket.wait()).approver == "dana"

    other = await broker.submit(request(approvers=("bob",)))
    await broker.deny(other.id, "alice", "never mind")               # the asker may take it back
    assert (await other.wait()).message == "denied by alice: never mind"


@pytest.mark.parametrize("approver, problem", [("", "non-empty"), ("  ", "non-empty"), (None, "non-empty"),
                                                ("bob\nmallory", "printable"), ("x" * 201, "printable")])
async def test_bad_approver_names(broker, approver, problem):
    ticket = await broker.submit(request())
    with pytest.raises(ApprovalError, match=problem):
        await broker.approve(ticket.id, approver)


async def test_unknown_ids(broker):
    with pytest.raises(UnknownApproval):
        await broker.get("ap-nope")
    with pytest.raises(UnknownApproval):
        await broker.approve("ap-nope", "bob")


async def test_timeout_without_real_waiting(autojump_clock, broker):
    events = []
    ticket = await broker.submit(request(timeout=120), on_event=events.append)
    start = trio.current_time()
    outcome = await ticket.wait()
    assert outcome.timed_out and not outcome.approved and outcome.message == "approval timed out"
    assert trio.current_time() - start == pytest.approx(120)
    assert (await broker.get(ticket.id)).state == "timed_out"
    assert [e["event"] for e in events] == ["requested", "timed_out"]
    with pytest.raises(AlreadyDecided):
        await broker.approve(ticket.id, "bob")


async def test_the_default_timeout_is_five_minutes(autojump_clock, broker):
    ticket = await broker.submit(request())
    start = trio.current_time()
    assert (await ticket.wait()).timed_out
    assert trio.current_time() - start == pytest.approx(300)


async def test_waiting_in_slices_for_notices(autojump_clock, broker):
    """The proxy may wait a notice interval at a time; the deadline stays the request's."""
    ticket = await broker.submit(request(timeout=35))
    slices = 0
    while True:
        with trio.move_on_after(10):
            outcome = await ticket.wait()
            break
        slices += 1
    assert slices == 3 and outcome.timed_out


async def test_withdraw(broker):
    events = []
    withdrawn_before = metrics.APPROVAL_OUTCOMES.value(outcome="withdrawn")
    ticket = await broker.submit(request(), on_event=events.append)
    ticket.withdraw()
    await trio.testing.wait_all_tasks_blocked()
    assert await broker.approvals() == []
    assert (await broker.get(ticket.id)).state == "withdrawn"
    outcome = await ticket.wait()
    assert not outcome.approved and outcome.approver is None and "withdrawn" in outcome.message
    assert events[-1]["event"] == "withdrawn" and "went away" in events[-1]["reason"]
    assert metrics.APPROVAL_OUTCOMES.value(outcome="withdrawn") == withdrawn_before + 1
    with pytest.raises(AlreadyDecided):
        await broker.approve(ticket.id, "bob")
    ticket.withdraw()                                                   # twice: nothing more
    assert len(events) == 2


async def test_window_grant(autojump_clock, broker):
    fp = "update accounts set frozen = ? where id = ?"
    ticket = await broker.submit(request(fingerprint=fp))
    uses_before = metrics.APPROVAL_WINDOW_USES.value()
    await broker.approve(ticket.id, "bob", "incident", window="15m")
    outcome = await ticket.wait()
    assert outcome.approved and outcome.grant == "window"
    grant = broker.window_grant("alice", fp)
    assert grant is not None and grant.approver == "bob" and grant.approval_id == ticket.id
    assert grant.expires == pytest.approx(wall() + 900)
    assert grant.record()["event"] == "window_used"
    assert metrics.APPROVAL_WINDOW_USES.value() == uses_before + 1
    assert broker.window_grant("mallory", fp) is None                  # this user only
    assert broker.window_grant("alice", "drop table ?") is None        # this fingerprint only
    assert broker.window_grant("alice", "") is None
    await trio.sleep(899)
    assert broker.window_grant("alice", fp) is not None
    await trio.sleep(2)
    assert broker.window_grant("alice", fp) is None                    # expired


async def test_a_window_also_releases_what_waits_with_that_fingerprint(broker):
    first = await broker.submit(request())
    second = await broker.submit(request(statement="DELETE FROM t WHERE id = 8"))
    unrelated = await broker.submit(request(user="erin"))
    await broker.approve(first.id, "bob", window="10m")
    assert (await second.wait()).approved
    assert (await broker.get(second.id)).reason == f"window grant {first.id}"
    assert (await broker.get(unrelated.id)).pending


@pytest.mark.parametrize("window, problem", [("2d", "longer than the longest"), ("soon", "not a duration"),
                                              (-5, "positive")])
async def test_bad_windows(broker, window, problem):
    ticket = await broker.submit(request())
    with pytest.raises(ApprovalError, match=problem):
        await broker.approve(ticket.id, "bob", window=window)


async def test_a_window_needs_a_fingerprint(broker):
    ticket = await broker.submit(request(fingerprint=""))
    with pytest.raises(ApprovalError, match="fingerprint"):
        await broker.approve(ticket.id, "bob", window="5m")
    await broker.approve(ticket.id, "bob")
    assert (await ticket.wait()).approved


async def test_a_held_request_costs_nothing_while_it_waits(autojump_clock, broker):
    """No polling: between submit and the decision, no task of the broker or the waiter runs."""
    ticket = await broker.submit(request(timeout=3600))
    steps = []

    class CountSteps(trio.abc.Instrument):
        def before_task_step(self, task):
            steps.append(task.name)

    async def waiter():
        await ticket.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter, name="waiter")
        await trio.testing.wait_all_tasks_blocked()
        instrument = CountSteps()
        trio.lowlevel.add_instrument(instrument)
        await trio.sleep(1800)                      # half an hour of (mock) waiting
        trio.lowlevel.remove_instrument(instrument)
        me = trio.lowlevel.current_task().name
        assert [name for name in steps if name != me] == []
        await broker.approve(ticket.id, "bob")


async def test_submit_needs_a_running_broker():
    with pytest.raises(ApprovalUnavailable, match="not running"):
        await Broker().submit(request())


async def test_a_broken_session_callback_does_not_break_the_broker(broker):
    def explode(record):
        raise RuntimeError("recorder is gone")

    ticket = await broker.submit(request(), on_event=explode)
    await broker.approve(ticket.id, "bob")
    assert (await ticket.wait()).approved


async def test_webhook_payload(broker):
    broker.admin_url = "http://127.0.0.1:6480"
    ticket = await broker.submit(request(statement='select "}<b>x</b>'))
    payload = broker.webhook_payload(ticket.approval)
    assert payload["statement"] == 'select "}<b>x</b>' and payload["rule"] == "ask-deletes"
    assert payload["approve"]["cli"] == f"wireproxy approvals approve {ticket.id}"
    assert payload["approve"]["api"] == f"http://127.0.0.1:6480/approvals/{ticket.id}/approve"


def test_records_round_trip_through_their_dict():
    approval = Approval("ap-x", request(approvers=("bob",), timeout=30), EPOCH, EPOCH + 30)
    approval = approval.decide("approved", "bob", "ok", EPOCH + 5, "window", 600)
    again = Approval.from_dict(approval.to_dict())
    assert again == approval and again.grant_until == EPOCH + 605
    assert again.to_dict()["grant_until"].endswith("Z")


def test_check_approver_without_named_approvers():
    approval = Approval("ap-x", request(), EPOCH, EPOCH + 30)
    check_approver(approval, "anyone")
    with pytest.raises(NotAllowed):
        check_approver(approval, "alice")


def test_durations():
    assert [parse_duration(v) for v in (90, 1.5, "90", "30s", "15m", "2h", "1d", " 10 min ")] == \
        [90, 1.5, 90, 30, 900, 7200, 86400, 600]
    for bad in ("", "15x", "m", "-1m", 0, True, "nan"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert [format_duration(s) for s in (900, 7200, 86400, 45, 90)] == ["15m", "2h", "1d", "45s", "90s"]


def test_outcome_messages():
    assert Outcome(False, "bob", "").message == "denied by bob"
    assert Outcome(False, None, "", timed_out=True).message == "approval timed out"
    with pytest.raises(ValueError):
        request(timeout=0)
