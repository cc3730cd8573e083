"""The conversation core alone: what the server owes, after what the client sent."""

from __future__ import annotations

from wireproxy.pg.conversation import Conversation
from wireproxy.pg.protocol import BIND_OK, COMPLETE, NO_DATA, PARSE_OK, ROW_DESCRIPTION, Wait

P, B, D, E, C = Wait.PARSE, Wait.BIND, Wait.DESCRIBE, Wait.EXECUTE, Wait.CLOSE


def waits(conv: Conversation) -> list[Wait]:
    return [p.wait for p in conv.pending]


def batch(conv: Conversation, *kinds: Wait, sync: bool = True) -> None:
    for kind in kinds:
        conv.expect(kind)
    if sync:
        conv.sync()


def test_each_answer_pops_what_it_answers_and_ready_pops_to_the_sync_point():
    conv = Conversation()
    batch(conv, P, B, D, E)
    assert conv.answered(PARSE_OK).wait is P and conv.answered(BIND_OK).wait is B
    assert conv.answered(COMPLETE) is None           # a Describe is owed first: not its answer
    assert conv.answered(ROW_DESCRIPTION).wait is D and conv.answered(COMPLETE).wait is E
    assert [e.wait for e in conv.ready("I")] == [Wait.SYNC] and not conv.busy


def test_a_query_owns_everything_up_to_its_ready():
    conv = Conversation()
    conv.expect(Wait.QUERY)
    conv.expect(Wait.QUERY)
    assert conv.answered(COMPLETE) is None and conv.answered(ROW_DESCRIPTION) is None
    assert len(conv.ready("T")) == 1 and waits(conv) == [Wait.QUERY]
    assert conv.transaction_status == "T"


def test_an_extended_error_skips_to_sync_and_a_message_while_skipping_is_not_expected():
    conv = Conversation()
    batch(conv, P, B, E, sync=False)
    popped = conv.error()
    assert [e.wait for e in popped] == [P, B, E] and conv.discarding
    assert conv.expect(Wait.QUERY) is None and conv.expect(P) is None
    conv.sync()
    assert waits(conv) == [Wait.SYNC] and not conv.discarding


def test_an_error_of_a_query_or_a_sync_pops_nothing():
    conv = Conversation()
    conv.expect(Wait.QUERY)
    assert conv.error() == [] and waits(conv) == [Wait.QUERY]


def test_libpq_extended_copy_the_sync_before_the_data_is_ignored():
    conv = Conversation()
    batch(conv, P, B, D, E)                     # P/B/D/E/S, then the data
    conv.copy_end()
    conv.sync()
    for code in (PARSE_OK, BIND_OK, NO_DATA):
        conv.answered(code)
    conv.copy_started()                         # CopyInResponse for the Execute
    assert waits(conv) == [E, Wait.SYNC]
    assert conv.answered(COMPLETE).wait is E and len(conv.ready("I")) == 1 and not conv.busy


def test_a_copy_whose_data_is_still_coming_ignores_syncs_until_its_end():
    conv = Conversation()
    batch(conv, E, sync=False)
    conv.copy_started()
    assert conv.copy_in and conv.sync() is None
    conv.copy_end()
    assert not conv.copy_in and conv.sync() is not None and waits(conv) == [E, Wait.SYNC]


def test_a_stray_message_during_copy_in_is_read_by_the_copy_and_answered_by_nothing():
    conv = Conversation()
    conv.expect(Wait.QUERY)
    conv.copy_started()
    assert conv.expect(P) is None and not conv.copy_in


def test_a_copy_end_marker_never_stands_in_the_way_of_an_answer():
    conv = Conversation()
    conv.expect(Wait.QUERY)                     # COPY that fails before copying
    conv.copy_end()
    conv.expect(P)
    assert len(conv.ready("I")) == 1
    assert conv.answered(PARSE_OK).wait is P


def test_only_sync_points_for_a_plain_relay_and_its_copy_markers():
    conv = Conversation(full=False)
    conv.sync()                                 # Execute(COPY) has no entry; its Sync is the head
    conv.copy_end()
    conv.sync()
    conv.copy_started()
    assert waits(conv) == [Wait.SYNC] and len(conv.ready("I")) == 1 and not conv.busy
    assert conv.error() == []


def test_settled_only_when_nothing_was_sent_since_ready():
    conv = Conversation()
    assert conv.settled
    conv.expect(P)
    conv.answered(PARSE_OK)
    assert not conv.settled                      # a batch without Sync may change the status
    conv.sync()
    conv.ready("E")
    assert conv.settled and conv.transaction_status == "E"


def test_our_own_requests_are_internal():
    class Ask:
        sql = "SELECT 1"
    conv = Conversation()
    conv.expect(Wait.QUERY)
    data = conv.ask(Ask())
    assert data.startswith(b"Q") and conv.pending[-1].internal and conv.pending[-1].wait is Wait.LOOKUP
    assert conv.internal(D).internal


def test_inside_an_open_batch_our_request_is_extended_and_keeps_the_batch_open():
    class Ask:
        sql = "SELECT 1"
    conv = Conversation()
    conv.expect(P)
    data = conv.ask(Ask())
    assert data[:1] == b"P" and data.endswith(b"H\0\0\0\4") and b"Q\0" not in data
    assert [p.wait for p in conv.pending] == [P, P, B, E, C, C] and conv.pending[3].lookup is not None
    assert all(p.internal for p in list(conv.pending)[1:])


def test_the_status_is_known_until_something_runs_a_statement():
    conv = Conversation()
    conv.expect(Wait.QUERY)
    conv.ready("E")
    conv.expect(Wait.DESCRIBE)                   # cannot end or abort a transaction
    assert conv.status_known and not conv.settled
    conv.expect(Wait.EXECUTE)                    # may be a ROLLBACK
    assert not conv.status_known
