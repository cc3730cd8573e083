"""The format and the verifier: round trips, and every kind of damage detected and classified."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from sessionlog_helpers import encode_log, frame_spans, general_path_only, statements, twin_encoders
from wireproxy.sessionlog import (INTACT, TAMPERED, TRUNCATED, UNREADABLE, Keyring, load_public_key,
                                  read_log_bytes)
from wireproxy.sessionlog.format import FRAME_SIZE, MAGIC, MAX_RECORD_PLAINTEXT, PREAMBLE


def test_round_trip(key_file, keyring):
    records = statements(3) + [{"sql": "SELECT 'ünïcödé ☃'", "params": [None, 1, 2.5, True, "x"]}]
    sid, data = encode_log(key_file, records, header={"user": "bob", "application_name": "psql"})
    read = read_log_bytes(data, keyring, name=sid)
    assert read.status == INTACT and read.problem is None and read.exit_code == 0
    assert read.session_id == sid and read.count == 4
    assert read.header["user"] == "bob" and read.header["application_name"] == "psql"
    assert [{k: v for k, v in r.items() if k not in ("seq", "ts")} for r in read.records] == records
    assert [r["seq"] for r in read.records] == [1, 2, 3, 4]
    assert read.end["records"] == 4 and read.end["reason"] == "closed"


def test_skim_read_proves_the_same(key_file, keyring):
    sid, data = encode_log(key_file, statements(5))
    read = read_log_bytes(data, keyring, decrypt_all=False)
    assert read.status == INTACT and read.count == 5 and read.records == [] and read.header["user"] == "alice"


def test_odd_values_are_serialised(key_file, keyring):
    records = [{"params": [b"\x00\xff", dt.datetime(2025, 1, 2, 3, 4, 5), decimal.Decimal("1.50"), (1, 2)]}]
    _, data = encode_log(key_file, records)
    (rec,) = read_log_bytes(data, keyring).records
    assert rec["params"] == ["\\x00ff", "2025-01-02T03:04:05", "1.50", [1, 2]]


def test_oversized_and_unserialisable_records_leave_a_note(key_file, keyring):
    loop: list = []
    loop.append(loop)
    records = [{"sql": "SELECT big", "rows": 1, "blob": "x" * (MAX_RECORD_PLAINTEXT + 10)}, {"sql": "q", "p": loop}]
    _, data = encode_log(key_file, records)
    read = read_log_bytes(data, keyring)
    assert read.status == INTACT
    big, odd = read.records
    assert big["oversized"] > MAX_RECORD_PLAINTEXT and big["sql"] == "SELECT big" and len(big["blob"]) <= 4096
    assert "unserialisable" in odd and odd["sql"] == "q"


def test_marker_is_nowhere_in_the_bytes(key_file, keyring):
    marker = "MARKER-7c1e9f"
    _, data = encode_log(key_file, statements(3, marker), header={"user": marker, "database": marker})
    assert marker.encode() not in data
    assert marker.encode("utf-16-le") not in data
    read = read_log_bytes(data, keyring)
    assert read.header["user"] == marker and marker in read.records[0]["sql"]


# --- every single-byte change ----------------------------------------------------------------


@pytest.mark.parametrize("xor", [0x01, 0x80, 0xFF])
def test_every_single_byte_change_is_tampering(key_file, keyring, xor):
    sid, data = encode_log(key_file, statements(2))
    spans = frame_spans(data)
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= xor
        read = read_log_bytes(bytes(damaged), keyring, name=sid)
        if pos == len(MAGIC) - 1:  # the version byte: another version, which this reader does not know
            assert read.status == UNREADABLE and "unsupported session log format version" in read.problem
            assert read.exit_code != 0
            continue
        assert read.status == TAMPERED, (pos, read.status, read.problem)
        assert read.problem and read.exit_code == 1
        frame = next((i for i, (a, b) in enumerate(spans) if a <= pos < b), 0)
        assert read.bad_record is not None and read.bad_record <= frame, (pos, read.bad_record, read.problem)


def test_flip_in_the_middle_names_that_record(key_file, keyring):
    _, data = encode_log(key_file, statements(6))
    start, end = frame_spans(data)[4]
    damaged = bytearray(data)
    damaged[(start + end) // 2] ^= 0x20
    read = read_log_bytes(bytes(damaged), keyring)
    assert read.status == TAMPERED and read.bad_record == 4
    assert "record 4" in read.problem and "authentication" in read.problem
    assert read.count == 3 and len(read.records) == 3  # the records before it are still shown


def test_skim_read_also_finds_the_first_bad_record(key_file, keyring):
    _, data = encode_log(key_file, statements(6))
    start, end = frame_spans(data)[2]
    damaged = bytearray(data)
    damaged[end - 1] ^= 1
    read = read_log_bytes(bytes(damaged), keyring, decrypt_all=False)
    assert read.status == TAMPERED and read.bad_record == 2


# --- records removed, reordered, inserted ------------------------------------------------------


def _cut(data: bytes, spans, index: int) -> bytes:
    a, b = spans[index]
    return data[:a] + data[b:]


def test_removed_record(key_file, keyring):
    _, data = encode_log(key_file, statements(5))
    spans = frame_spans(data)
    read = read_log_bytes(_cut(data, spans, 3), keyring)
    assert read.status == TAMPERED and read.bad_record == 3
    assert "record 3 is missing" in read.problem


def test_removed_header_record(key_file, keyring):
    _, data = encode_log(key_file, statements(2))
    read = read_log_bytes(_cut(data, frame_spans(data), 0), keyring)
    assert read.status == TAMPERED and read.bad_record == 0


def test_swapped_records(key_file, keyring):
    _, data = encode_log(key_file, statements(5))
    spans = frame_spans(data)
    (a1, b1), (a2, b2) = spans[2], spans[3]
    swapped = data[:a1] + data[a2:b2] + data[a1:b1] + data[b2:]
    read = read_log_bytes(swapped, keyring)
    assert read.status == TAMPERED and read.bad_record == 2 and "reordered" in read.problem


def test_duplicated_record(key_file, keyring):
    _, data = encode_log(key_file, statements(4))
    spans = frame_spans(data)
    a, b = spans[2]
    doubled = data[:b] + data[a:b] + data[b:]
    read = read_log_bytes(doubled, keyring)
    assert read.status == TAMPERED and read.bad_record == 3 and "appears again" in read.problem


def test_record_inserted_from_another_session(key_file, keyring):
    _, data = encode_log(key_file, statements(4))
    _, other = encode_log(key_file, statements(4, "other"))
    spans, other_spans = frame_spans(data), frame_spans(other)
    a, b = spans[2]
    oa, ob = other_spans[2]  # same seq, same kind, valid frame header: only the crypto can tell
    forged = data[:a] + other[oa:ob] + data[b:]
    read = read_log_bytes(forged, keyring)
    assert read.status == TAMPERED and read.bad_record == 2 and "authentication" in read.problem
    inserted = data[:a] + other[oa:ob] + data[a:]
    read = read_log_bytes(inserted, keyring)
    assert read.status == TAMPERED and read.bad_record == 2


def test_data_after_the_final_record(key_file, keyring):
    _, data = encode_log(key_file, statements(2))
    read = read_log_bytes(data + b"\x00" * 3, keyring)
    assert read.status == TAMPERED and "after the final record" in read.problem
    spans = frame_spans(data)
    a, b = spans[1]
    read = read_log_bytes(data + data[a:b], keyring)
    assert read.status == TAMPERED and read.bad_record == 4


def test_renamed_file_is_tampering(key_file, keyring):
    _, data = encode_log(key_file, statements(1))
    other_sid, _ = encode_log(key_file, [])
    read = read_log_bytes(data, keyring, name=other_sid)
    assert read.status == TAMPERED and "named" in read.problem


def test_not_a_log(keyring):
    read = read_log_bytes(b"hello, world, this is not a log at all", keyring)
    assert read.status == TAMPERED and "bad magic" in read.problem


# --- truncation: what a crash leaves -----------------------------------------------------------


def test_every_truncation_is_truncated_with_the_right_count(key_file, keyring):
    sid, data = encode_log(key_file, statements(3))
    spans = frame_spans(data)
    for length in range(len(data)):
        read = read_log_bytes(data[:length], keyring, name=sid if length >= PREAMBLE.size else None)
        assert read.status == TRUNCATED, (length, read.status, read.problem)
        assert read.exit_code == 3
        complete = sum(1 for _, b in spans if b <= length)  # frames wholly present, header included
        assert read.count == max(complete - 1, 0), (length, read.count)
        assert len(read.records) == read.count
        assert [r["seq"] for r in read.records] == list(range(1, read.count + 1))


def test_missing_final_record_is_truncated(key_file, keyring):
    _, data = encode_log(key_file, statements(3), end=False)
    read = read_log_bytes(data, keyring)
    assert read.status == TRUNCATED and read.count == 3 and "no final record" in read.problem
    assert read_log_bytes(data, keyring, is_open=True).status == "open"


def test_zero_filled_tail_is_truncated(key_file, keyring):
    _, data = encode_log(key_file, statements(3))
    spans = frame_spans(data)
    a, b = spans[3]
    # A crash after the size grew but before the data reached the disk: zeros.
    for tail in (data[:a] + bytes(b - a), data[:a] + data[a:a + FRAME_SIZE] + bytes(b - a - FRAME_SIZE), data[:b] + bytes(100)):
        read = read_log_bytes(tail, keyring)
        assert read.status == TRUNCATED, read.problem
        assert read.count >= 2


# --- keys ---------------------------------------------------------------------------------


def test_wrong_private_key_is_a_clear_error(key_file):
    _, data = encode_log(key_file, statements(1))
    stranger = Keyring.of(X25519PrivateKey.generate())
    read = read_log_bytes(data, stranger)
    assert read.status == UNREADABLE and read.exit_code == 2
    assert read.key_id in read.problem and "wrong private key" in read.problem
    assert stranger.key_ids()[0] in read.problem


def test_altered_key_id_is_tampering_not_a_wrong_key(key_file, keyring):
    _, data = encode_log(key_file, statements(1))
    damaged = bytearray(data)
    damaged[8 + 12] ^= 0xFF  # first byte of the key id
    read = read_log_bytes(bytes(damaged), keyring)
    assert read.status == TAMPERED and read.bad_record == 0


# --- the writer's fast path ----------------------------------------------------------------------


class _Unprintable:
    def __str__(self):
        raise RuntimeError("no text")


def _odd_records() -> list:
    loop: list = []
    loop.append(loop)
    return [{"sql": "SELECT 1", "rows": 1, "duration_ms": 0.41}, {}, {"seq": 99, "x": 1}, {"ts": "mine"},
            {"lone": "\ud800 surrogate"}, {"p": [b"\x00\xff", dt.datetime(2025, 1, 2), decimal.Decimal("1.5"), (1, 2)]},
            {1: "int key", None: 2, 2.5: 3}, {"nan": float("nan"), "inf": float("-inf")},
            {"u": "ünï ☃ \n\t\"\\ \x00"}, {"big": "x" * (MAX_RECORD_PLAINTEXT + 1)}, {"loop": loop},
            {"bad": _Unprintable()}, {"nested": {"a": [1, {"b": None}]}}]


def test_bulk_fast_path_writes_the_same_bytes_as_the_general_path(key_file, keyring):
    public = load_public_key(str(key_file) + ".pub")
    records = _odd_records()
    ts = 1764067921.1234
    items = [(rec, ts + i * 0.0004) for i, rec in enumerate(records)]
    for mode in ("bulk", "single"):
        logs = []
        for enc, general in zip(twin_encoders(public, count=2), (False, True)):
            data = enc.start({"user": "alice"})
            with general_path_only() if general else contextlib.nullcontext():
                if mode == "bulk":      # one frame, as the writer writes a flush
                    out: list[bytes] = []
                    enc.records(items, out)
                    data += b"".join(out) + enc.seal()
                else:                   # a frame each
                    for rec, at in items:
                        data += enc.record(rec, at)
            logs.append(data + enc.end({"reason": "closed"}, ts + 1))
        assert logs[0] == logs[1], mode
        read = read_log_bytes(logs[0], keyring)
        assert read.status == INTACT and read.count == len(records)
        assert [r["seq"] for r in read.records] == list(range(1, len(records) + 1))
        assert read.records[2]["x"] == 1 and read.records[3]["ts"] != "mine"
        assert "unserialisable" in read.records[10] and "no text" in read.records[11]["unserialisable"]
        assert len(frame_spans(logs[0])) == (3 if mode == "bulk" else 2 + len(records))


def test_bulk_encoding_stops_cleanly_at_a_record_that_raises(key_file, keyring):
    public = load_public_key(str(key_file) + ".pub")
    (enc,) = twin_encoders(public, count=1)
    data = enc.start({"user": "alice"})
    items = [({"sql": f"SELECT {i}", "result_rows": [[i]]}, 1764067921.0 + i) for i in range(5)]

    def results(entry):
        if entry["sql"] == "SELECT 2":
            raise RuntimeError("a bug in the caller's hook")
        return entry

    out: list[bytes] = []
    with pytest.raises(RuntimeError):
        enc.records(items, out, results=results)
    assert out == [] and enc.seq == 3 and enc.pending == 2  # records 1 and 2 in; the encoder stands after them
    enc.records(items, out, 3)                               # go on past the bad one
    data += b"".join(out) + enc.seal() + enc.end({"reason": "closed"}, 1764067930.0)
    read = read_log_bytes(data, keyring)
    assert read.status == INTACT and len(frame_spans(data)) == 3
    assert [r["sql"] for r in read.records] == ["SELECT 0", "SELECT 1", "SELECT 3", "SELECT 4"]
    assert [r["seq"] for r in read.records] == [1, 2, 3, 4]
