"""What the stateful test found, kept as regression examples: each replays the steps hypothesis
shrank a failure to, through the same harness and invariants (test_relay_stateful.py)."""

from __future__ import annotations

import pytest

from test_relay_stateful import RelayAgainstModel

NO_CANCEL = [False] * 4


def replay(*steps):
    machine = RelayAgainstModel()
    machine.connect()
    for name, kwargs in steps:
        getattr(machine, name)(**kwargs)
        machine.the_client_sees_what_it_would_see()
        machine.nothing_blocked_reaches_the_server()
        machine.an_idle_session_expects_and_holds_nothing()
    return machine


def test_blocks_after_a_libpq_extended_copy_name_their_own_rules():
    """The issue's case: libpq's Sync after an extended COPY's Execute is ignored by the server;
    the relay expected an answer for it and fell one answer behind for the rest of the session."""
    machine = replay(
        ("simple_query", dict(sql="BEGIN", chunks=None, lands=NO_CANCEL)),
        ("copy_in_extended", dict(rows=2, fail=False, libpq=True, stray=False, chunks=None)),
        ("extended_statement", dict(sql="DROP TABLE t", name="", portal="", describe=True, max_rows=0,
                                    chunks=None, lands=NO_CANCEL)),
        ("sync", dict(chunks=None)),
        ("simple_query", dict(sql="ROLLBACK", chunks=None, lands=NO_CANCEL)),
        ("simple_query", dict(sql="DROP TABLE t", chunks=7, lands=NO_CANCEL)),
    )
    assert machine.seen.count(b"blocked by wireproxy rule no-drop") == 2


@pytest.mark.parametrize("rest", ["SELECT notice", "SELECT 1/0", "COPY t TO STDOUT"])
def test_after_a_cut_the_rest_of_a_query_string_is_unseen(rest):
    """A notice or an error of a statement after the cut one belongs to the muted rest."""
    replay(("simple_query", dict(sql=f"SELECT n FROM big; {rest}", chunks=None, lands=NO_CANCEL)))


def test_copy_out_lines_count_against_a_query_strings_limits():
    replay(("simple_query", dict(sql="COPY t TO STDOUT; SELECT n FROM big", chunks=None, lands=NO_CANCEL)))


@pytest.mark.parametrize("lands", [True, False])
def test_a_cut_in_a_pipeline_fails_its_batch_whether_or_not_the_cancel_lands(lands):
    replay(
        ("simple_query", dict(sql="BEGIN", chunks=None, lands=NO_CANCEL)),
        ("extended_statement", dict(sql="SELECT n FROM big", name="", portal="p1", describe=False,
                                    max_rows=0, chunks=None, lands=[lands] * 4)),
        ("extended_statement", dict(sql="INSERT INTO t VALUES (1)", name="s1", portal="", describe=False,
                                    max_rows=0, chunks=None, lands=NO_CANCEL)),
        ("sync", dict(chunks=None)),
        ("loose_message", dict(kind="P", name="p1", what="execute")),
        ("sync", dict(chunks=None)),
    )


def test_a_function_call_after_a_batch_ended_a_failed_transaction_is_looked_up():
    """The last ReadyForQuery said E, but a COMMIT since (no Sync yet) ended the transaction."""
    replay(
        ("simple_query", dict(sql="BEGIN", chunks=None, lands=NO_CANCEL)),
        ("loose_message", dict(kind="S", name="", what="describe")),
        ("sync", dict(chunks=None)),
        ("extended_statement", dict(sql="COMMIT", name="", portal="", describe=False, max_rows=0,
                                    chunks=None, lands=NO_CANCEL)),
        ("function_call", dict()),
    )


def test_a_function_call_in_a_failed_transaction_after_a_loose_describe_gets_its_ready():
    """CI found it: a Describe left open in a failed transaction made the relay look the call's
    function up in band; the lookup failed, the server skipped to a Sync that never came, and
    the client waited for a ReadyForQuery. A Describe cannot end the failed transaction, so the
    call is known to fail as it would have, with no lookup."""
    machine = replay(
        ("simple_query", dict(sql="SELECT n FROM small; BEGIN", chunks=None, lands=NO_CANCEL)),
        ("copy_in_extended", dict(rows=0, fail=False, libpq=False, stray=True, chunks=None)),
        ("loose_message", dict(kind="S", name="", what="describe")),
        ("function_call", dict()),
    )
    assert machine.seen.endswith(b"Z\x00\x00\x00\x05E")
