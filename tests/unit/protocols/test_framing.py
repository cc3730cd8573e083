"""The incremental Framer: whole messages out of any chunks, raw passthrough runs, the size cap.

Invariant checked throughout: the bytes that come out (typed messages include their header)
concatenate to exactly the bytes that went in, once the stream is at a message boundary.
"""

from __future__ import annotations

import pytest

from protocols.postgres import (RAW, STARTUP, BindComplete, CommandComplete, CopyData, CopyDone,
                                DataRow, ErrorResponse, Framer, ParseComplete, Query, ReadyForQuery,
                                RemoteProtocolError, RowDescription, Field, SSLRequest, StartupMessage,
                                Sync, DEFAULT_MAX_MESSAGE_SIZE)
from protocols.postgres.framing import MAX_STARTUP_PACKET
from protocols.postgres.wire import INT32, UINT32

D, d, C, Z = ord("D"), ord("d"), ord("C"), ord("Z")


def feed_all(framer: Framer, chunks) -> list[tuple[int, bytes]]:
    return [item for chunk in chunks for item in framer.feed(chunk)]


def joined(items) -> bytes:
    return b"".join(chunk for _, chunk in items)


def coalesce_raw(items):
    """Merge adjacent RAW chunks: how the items look if every chunk had come in one feed."""
    out: list[tuple[int, bytes]] = []
    for code, chunk in items:
        if code == RAW and out and out[-1][0] == RAW:
            out[-1] = (RAW, out[-1][1] + chunk)
        else:
            out.append((code, chunk))
    return out


def three_ways(stream: bytes, trailing: bytes = Query("SELECT 'after'").encode()[:7], **framer_args):
    """Yield (way, items, framer) for the whole buffer, byte at a time, and with trailing bytes."""
    framer = Framer(**framer_args)
    yield "whole", framer.feed(stream), framer
    framer = Framer(**framer_args)
    yield "bytewise", feed_all(framer, (stream[i:i + 1] for i in range(len(stream)))), framer
    framer = Framer(**framer_args)
    items = framer.feed(stream + trailing)
    assert framer.buffered == len(trailing)
    assert not framer.at_boundary
    yield "trailing", items, framer


SERVER_STREAM = [
    RowDescription((Field("a"), Field("b", type_oid=23))),
    DataRow.from_values([b"1", None]),
    DataRow.from_values([b"2", b"x" * 300]),
    DataRow.from_values([b"3", b""]),
    CommandComplete("SELECT 3"),
    ReadyForQuery("I"),
]


def test_whole_messages_three_ways():
    stream = b"".join(m.encode() for m in SERVER_STREAM)
    expected = [(m.TYPE[0], m.encode()) for m in SERVER_STREAM]
    for way, items, framer in three_ways(stream):
        assert items == expected, way
        assert joined(items) == stream


def test_feeding_nothing_is_harmless():
    framer = Framer()
    assert framer.feed(b"") == []
    assert framer.at_boundary and framer.buffered == 0
    assert framer.feed(b"Q\0") == []
    assert framer.feed(b"") == []
    assert framer.buffered == 2 and not framer.at_boundary
    assert framer.drain() == []
    assert framer.buffered == 2


def test_a_partial_header_is_buffered_until_complete():
    message = Query("SELECT 1").encode()
    framer = Framer()
    for cut in range(1, len(message)):
        framer = Framer()
        assert framer.feed(message[:cut]) == []
        assert framer.buffered == cut
        assert framer.feed(message[cut:]) == [(ord("Q"), message)]
        assert framer.at_boundary


# ------------------------------------------------------------------- bad lengths, the cap ---

@pytest.mark.parametrize("length", [0, 1, 2, 3])
def test_a_message_length_below_four_is_refused(length):
    for way in ("whole", "bytewise", "after a good message"):
        framer = Framer()
        bad = b"Q" + UINT32.pack(length) + b"rest"
        with pytest.raises(RemoteProtocolError, match="invalid message length") as info:
            if way == "whole":
                framer.feed(bad)
            elif way == "bytewise":
                feed_all(framer, (bad[i:i + 1] for i in range(len(bad))))
            else:
                framer.feed(Sync().encode() + bad)
        assert info.value.sqlstate == "08P01"


def test_a_length_of_exactly_four_is_an_empty_body():
    assert Framer().feed(b"S\0\0\0\4") == [(ord("S"), b"S\0\0\0\4")]


@pytest.mark.parametrize("passthrough", [frozenset(), frozenset({D})])
def test_the_cap_is_checked_from_the_header_alone(passthrough):
    cap = 100
    framer = Framer(max_message_size=cap, passthrough=passthrough)
    fits = DataRow(b"x" * (cap - 4)).encode()          # length field == cap
    assert joined(framer.feed(fits)) == fits
    framer = Framer(max_message_size=cap, passthrough=passthrough)
    header = b"D" + UINT32.pack(cap + 1)
    # Refused as soon as the header is in: nothing of the body is ever waited for or buffered.
    with pytest.raises(RemoteProtocolError, match="over the limit"):
        framer.feed(header)


def test_the_cap_refuses_a_lying_length_of_four_gigabytes():
    framer = Framer(max_message_size=1 << 20)
    with pytest.raises(RemoteProtocolError, match="over the limit"):
        framer.feed(b"B\xff\xff\xff\xff")


def test_the_cap_byte_at_a_time_and_after_good_messages():
    cap = 64
    big = Query("x" * 80).encode()
    framer = Framer(max_message_size=cap)
    with pytest.raises(RemoteProtocolError):
        feed_all(framer, (big[i:i + 1] for i in range(len(big))))
    framer = Framer(max_message_size=cap)
    with pytest.raises(RemoteProtocolError):
        framer.feed(Sync().encode() * 3 + big)


def test_the_default_cap_is_64_mib():
    assert Framer().max_message_size == DEFAULT_MAX_MESSAGE_SIZE == 64 * 1024 * 1024
    framer = Framer()
    assert framer.feed(b"Q" + UINT32.pack(64 * 1024 * 1024)) == []      # at the cap: waits
    with pytest.raises(RemoteProtocolError):
        Framer().feed(b"Q" + UINT32.pack(64 * 1024 * 1024 + 1))


def test_the_cap_error_is_a_protocol_violation_naming_the_limit():
    # PostgreSQL answers its own "invalid message length" with 08P01; so does the proxy.
    with pytest.raises(RemoteProtocolError, match="over the limit of 10") as info:
        Framer(max_message_size=10).feed(b"Q" + UINT32.pack(11))
    assert info.value.sqlstate == "08P01"


# ------------------------------------------------------------------------ passthrough -------

def test_consecutive_raw_messages_are_coalesced_into_one_chunk():
    rows = [DataRow.from_values([str(i).encode()]).encode() for i in range(5)]
    framer = Framer(passthrough={D, d})
    stream = rows[0] + rows[1] + CopyData(b"abc").encode() + rows[2]
    assert framer.feed(stream) == [(RAW, stream)]


def test_raw_runs_are_interrupted_by_typed_messages():
    row = DataRow.from_values([b"v"]).encode()
    complete = CommandComplete("SELECT 2").encode()
    ready = ReadyForQuery("I").encode()
    stream = row + row + complete + row + ready
    for way, items, framer in three_ways(stream, passthrough={D}):
        if way == "whole" or way == "trailing":
            assert items == [(RAW, row + row), (C, complete), (RAW, row), (Z, ready)]
        else:
            assert coalesce_raw(items) == [(RAW, row + row), (C, complete), (RAW, row), (Z, ready)]
        assert joined(items) == stream


def test_a_raw_message_before_a_partial_typed_one():
    row = DataRow.from_values([b"v"]).encode()
    complete = CommandComplete("SELECT 1").encode()
    framer = Framer(passthrough={D})
    assert framer.feed(row + complete[:3]) == [(RAW, row)]
    assert framer.buffered == 3
    assert framer.feed(complete[3:]) == [(C, complete)]
    assert framer.at_boundary


def test_a_huge_datarow_is_streamed_not_buffered():
    value = bytes(range(256)) * (10 * 1024 * 1024 // 256)          # 10 MiB
    row = DataRow.from_values([value]).encode()
    after = CommandComplete("SELECT 1").encode() + ReadyForQuery("I").encode()
    stream = row + after
    framer = Framer(passthrough={D})
    out = []
    chunk = 64 * 1024
    for i in range(0, len(stream), chunk):
        items = framer.feed(stream[i:i + chunk])
        assert framer.buffered < 5            # at most a split header of the next message
        out.extend(items)
        if i + chunk < len(row):
            assert not framer.at_boundary
            assert items and all(code == RAW for code, _ in items)
    raw = b"".join(c for code, c in out if code == RAW)
    assert raw == row
    assert [code for code, _ in out if code != RAW] == [C, Z]
    assert joined(out) == stream
    assert framer.at_boundary


def test_a_passthrough_message_split_inside_its_header():
    row = DataRow.from_values([b"abc"]).encode()
    framer = Framer(passthrough={D})
    assert framer.feed(row[:3]) == []
    assert framer.buffered == 3
    items = framer.feed(row[3:7])
    assert joined(items) == row[:7]
    assert framer.buffered == 0 and not framer.at_boundary
    items2 = framer.feed(row[7:] + Sync().encode())
    assert items2 == [(RAW, row[7:]), (ord("S"), Sync().encode())]
    assert framer.at_boundary


def test_the_end_of_a_streamed_message_coalesces_with_following_raw_messages():
    row = DataRow.from_values([b"x" * 100]).encode()
    framer = Framer(passthrough={D})
    first = framer.feed(row[:50])
    second = framer.feed(row[50:] + row + row)
    assert first == [(RAW, row[:50])]
    assert second == [(RAW, row[50:] + row + row)]


def test_every_split_of_a_passthrough_stream_gives_back_the_same_bytes():
    row = DataRow.from_values([b"value", None]).encode()
    stream = (RowDescription((Field("a"), Field("b"))).encode() + row * 3 + CopyData(b"cd").encode()
              + CommandComplete("SELECT 3").encode() + ReadyForQuery("T").encode())
    typed = [ord("T"), C, Z]
    for a in range(len(stream) + 1):
        for b in range(a, len(stream) + 1, 7):
            framer = Framer(passthrough={D, d})
            items = feed_all(framer, (stream[:a], stream[a:b], stream[b:]))
            assert joined(items) == stream
            assert [code for code, _ in items if code != RAW] == typed
            assert framer.at_boundary


def test_changing_passthrough_mid_stream_and_drain():
    row = DataRow.from_values([b"v"]).encode()
    framer = Framer()
    assert framer.feed(row + row[:2]) == [(D, row)]
    framer.passthrough = frozenset({D})
    assert framer.drain() == []
    assert framer.feed(row[2:]) == [(RAW, row)]


# ------------------------------------------------------------------------ startup mode -------

def test_startup_mode_yields_one_packet_per_call():
    ssl = SSLRequest().encode()
    startup = StartupMessage({"user": "alice", "database": "db"}).encode()
    query = Query("SELECT 1").encode()
    framer = Framer(startup=True)
    assert framer.feed(ssl + startup + query) == [(STARTUP, ssl)]
    assert framer.buffered == len(startup) + len(query)
    assert framer.drain() == [(STARTUP, startup)]
    assert framer.buffered == len(query)
    framer.startup = False
    assert framer.drain() == [(ord("Q"), query)]
    assert framer.at_boundary
    assert framer.drain() == []


def test_startup_packets_three_ways():
    startup = StartupMessage({"user": "alice", "application_name": "psql"}).encode()
    for way, items, framer in three_ways(startup, trailing=SSLRequest().encode()[:5], startup=True):
        assert items == [(STARTUP, startup)], way


def test_startup_mode_bytewise_then_a_second_packet_waits_for_drain():
    ssl = SSLRequest().encode()
    startup = StartupMessage({"user": "u"}).encode()
    stream = ssl + startup
    framer = Framer(startup=True)
    out = []
    for i in range(len(stream)):
        items = framer.feed(stream[i:i + 1])
        assert len(items) <= 1
        out += items
    assert out == [(STARTUP, ssl), (STARTUP, startup)]


@pytest.mark.parametrize("length", [0, 4, 7, MAX_STARTUP_PACKET + 5, 0x7FFFFFFF, 0xFFFFFFFF])
def test_startup_packet_length_out_of_bounds(length):
    with pytest.raises(RemoteProtocolError, match="invalid length of startup packet"):
        Framer(startup=True).feed(INT32.pack(length) if length < 1 << 31 else UINT32.pack(length))


def test_startup_packet_length_bounds_that_are_accepted():
    assert Framer(startup=True).feed(SSLRequest().encode()) == [(STARTUP, SSLRequest().encode())]
    big = UINT32.pack(MAX_STARTUP_PACKET) + bytes(MAX_STARTUP_PACKET - 4)
    assert Framer(startup=True).feed(big) == [(STARTUP, big)]


def test_a_bad_header_after_good_messages_is_refused():
    framer = Framer()
    good = Query("SELECT 1").encode()
    assert framer.feed(good) == [(ord("Q"), good)]
    with pytest.raises(RemoteProtocolError):
        framer.feed(b"Q\0\0\0\0")


def test_error_response_and_bind_complete_are_not_passthrough_by_default():
    stream = ParseComplete().encode() + BindComplete().encode() + ErrorResponse.make("XX000", "x").encode()
    items = Framer(passthrough={D}).feed(stream)
    assert [code for code, _ in items] == [ord("1"), ord("2"), ord("E")]


def test_copy_done_ends_a_copy_stream():
    stream = CopyData(b"a\n").encode() * 4 + CopyDone().encode()
    for way, items, framer in three_ways(stream, passthrough={d}):
        assert joined(items) == stream
        assert items[-1] == (ord("c"), CopyDone().encode())
