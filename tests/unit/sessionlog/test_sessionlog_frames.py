"""Format version 2: several records to a frame (one frame per flush), damage to such frames,
unknown versions, and what the writer puts in one frame."""

from __future__ import annotations

import time

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionlog_helpers import encode_log, frames_of, statements
from wireproxy.cli.sessions import main
from wireproxy.sessionlog import (INTACT, OPEN, SUFFIX, TAMPERED, TRUNCATED, UNREADABLE, Keyring, SessionEncoder,
                                  SessionLog, new_session_id, read_log_bytes, read_session)
from wireproxy.sessionlog.format import FRAME_BUDGET, MAGIC, PREAMBLE


def _log(key_file, n: int = 12, per_frame: int = 4, **kw) -> tuple[str, bytes, list]:
    sid, data = encode_log(key_file, statements(n), per_frame=per_frame, **kw)
    return sid, data, frames_of(data)


def test_records_share_frames_and_round_trip(key_file, keyring):
    sid, data, frames = _log(key_file)
    assert [(seq, count) for _, _, seq, count in frames] == [(0, 1), (1, 4), (5, 4), (9, 4), (13, 1)]
    read = read_log_bytes(data, keyring, name=sid)
    assert read.status == INTACT and read.count == 12 and read.end["records"] == 12
    assert [r["seq"] for r in read.records] == list(range(1, 13))
    assert [r["sql"] for r in read.records] == [s["sql"] for s in statements(12)]
    skim = read_log_bytes(data, keyring, decrypt_all=False)
    assert skim.status == INTACT and skim.count == 12 and skim.records == []


def test_a_flipped_byte_in_a_frame_names_its_first_record(key_file, keyring):
    _, data, frames = _log(key_file)
    start, end, seq, count = frames[2]          # records 5-8
    for pos in (start + 30, (start + end) // 2, end - 1):
        damaged = bytearray(data)
        damaged[pos] ^= 0x04
        for decrypt_all in (True, False):
            read = read_log_bytes(bytes(damaged), keyring, decrypt_all=decrypt_all)
            assert read.status == TAMPERED and read.exit_code == 1 and read.bad_record == 5
            assert "records 5–8 fail authentication" in read.problem
            assert read.count == 4
        assert [r["seq"] for r in read_log_bytes(bytes(damaged), keyring).records] == [1, 2, 3, 4]


def test_a_changed_frame_header_is_tampering(key_file, keyring):
    _, data, frames = _log(key_file)
    start = frames[2][0]
    for pos in range(start, start + 24):         # length, seq, count, kind, pad, crc
        damaged = bytearray(data)
        damaged[pos] ^= 0x01
        read = read_log_bytes(bytes(damaged), keyring)
        assert read.status == TAMPERED and read.bad_record == 5, (pos, read.problem)


def test_a_dropped_frame(key_file, keyring):
    _, data, frames = _log(key_file)
    start, end = frames[2][:2]
    read = read_log_bytes(data[:start] + data[end:], keyring)
    assert read.status == TAMPERED and read.bad_record == 5
    assert "records 5–8 are missing (removed): record 9 follows record 4" in read.problem
    last = frames[-2]                            # the last records frame: the final frame then misplaced
    read = read_log_bytes(data[:last[0]] + data[last[1]:], keyring)
    assert read.status == TAMPERED and read.bad_record == 9


def test_swapped_frames(key_file, keyring):
    _, data, frames = _log(key_file)
    (a1, b1), (a2, b2) = frames[1][:2], frames[2][:2]
    read = read_log_bytes(data[:a1] + data[a2:b2] + data[a1:b1] + data[b2:], keyring)
    assert read.status == TAMPERED and read.bad_record == 1 and "reordered" in read.problem


def test_a_duplicated_frame(key_file, keyring):
    _, data, frames = _log(key_file)
    a, b = frames[1][:2]
    read = read_log_bytes(data[:b] + data[a:b] + data[b:], keyring)
    assert read.status == TAMPERED and read.bad_record == 5 and "appears again" in read.problem


def test_a_frame_from_another_session_with_the_same_seqs(key_file, keyring):
    _, data, frames = _log(key_file)
    _, other, other_frames = _log(key_file)
    a, b = frames[2][:2]
    oa, ob = other_frames[2][:2]
    read = read_log_bytes(data[:a] + other[oa:ob] + data[b:], keyring)
    assert read.status == TAMPERED and read.bad_record == 5 and "authentication" in read.problem


def test_a_frame_regrouped_by_someone_without_the_key(key_file, keyring):
    """Lengths and counts are in clear: changing the count (with a fresh CRC) must still fail."""
    import zlib

    from wireproxy.sessionlog.format import FRAME_CRC, FRAME_HEAD

    _, data, frames = _log(key_file)
    start = frames[1][0]
    length, seq, count, kind = FRAME_HEAD.unpack_from(data, start)
    head = FRAME_HEAD.pack(length, seq, count - 1, kind)
    forged = data[:start] + head + FRAME_CRC.pack(zlib.crc32(head)) + data[start + 24:]
    read = read_log_bytes(forged, keyring)
    assert read.status == TAMPERED and read.bad_record == 1


def test_every_truncation_is_truncated_with_whole_frames_counted(key_file, keyring):
    sid, data, frames = _log(key_file, n=6, per_frame=3)
    for length in range(len(data)):
        read = read_log_bytes(data[:length], keyring, name=sid if length >= PREAMBLE.size else None)
        assert read.status == TRUNCATED and read.exit_code == 3, (length, read.problem)
        whole = sum(count for start, end, _, count in frames[1:] if end <= length and start < frames[-1][0])
        assert read.count == whole and len(read.records) == whole, (length, read.count)


def test_a_zero_filled_frame_is_a_crash_not_tampering(key_file, keyring):
    _, data, frames = _log(key_file, end=False)
    start, end = frames[-1][:2]
    read = read_log_bytes(data[:start] + bytes(end - start), keyring)
    assert read.status == TRUNCATED and read.count == 8
    read = read_log_bytes(data[:start + 24] + bytes(end - start - 24), keyring)
    assert read.status == TRUNCATED and read.count == 8 and "zero-filled" in read.problem


def test_appended_garbage(key_file, keyring):
    _, sealed, _ = _log(key_file)
    read = read_log_bytes(sealed + b"garbage", keyring)
    assert read.status == TAMPERED and "7 bytes after the final record" in read.problem
    _, open_log, _ = _log(key_file, end=False)
    read = read_log_bytes(open_log + b"garbage appended here by hand!!", keyring)
    assert read.status == TAMPERED and read.bad_record == 13 and read.count == 12


# --- versions ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 3, 255])
def test_an_unknown_version_is_named_not_bad_magic(key_file, keyring, version):
    _, data, _ = _log(key_file)
    other = data[:len(MAGIC) - 1] + bytes([version]) + data[len(MAGIC):]
    read = read_log_bytes(other, keyring)
    assert read.status == UNREADABLE and read.exit_code != 0
    assert read.problem == f"unsupported session log format version {version} (this wireproxy reads 1 and 2)"


def test_verify_and_list_name_an_unknown_version(capsys, log_dir, key_file):
    log_dir.mkdir()
    sid, data, _ = _log(key_file)
    (log_dir / f"{sid}{SUFFIX}").write_bytes(data[:7] + b"\x07" + data[8:])
    paths = ["--log-dir", str(log_dir), "--key-file", str(key_file)]
    assert main(["sessions", "verify", *paths]) != 0
    out, err = capsys.readouterr()
    assert "unsupported session log format version 7 (this wireproxy reads 1 and 2)" in out + err
    assert "bad magic" not in out + err
    main(["sessions", "list", *paths])
    out, err = capsys.readouterr()
    assert sid in out and "Traceback" not in err


def test_a_version_2_log_relabelled_version_1_is_tampering(key_file, keyring):
    _, data, _ = _log(key_file)
    read = read_log_bytes(data[:7] + b"\x01" + data[8:], keyring)
    assert read.status == TAMPERED and read.bad_record == 0 and "preamble was altered" in read.problem


# --- the encoder and the writer --------------------------------------------------------------


def test_a_flush_past_the_frame_budget_is_split_into_frames(key_file, keyring):
    big = {"sql": "SELECT 1", "blob": "x" * (FRAME_BUDGET // 3)}
    sid, data = encode_log(key_file, [big] * 7 + [{"sql": "SELECT 2"}], per_frame=8)
    records = [f for f in frames_of(data) if f[2] not in (0, 9)]
    assert [count for *_, count in records] == [3, 3, 2]      # sealed each time it reaches the budget
    assert all(end - start < FRAME_BUDGET + FRAME_BUDGET // 3 + 100 for start, end, _, _ in records)
    read = read_log_bytes(data, keyring, name=sid)
    assert read.status == INTACT and read.count == 8 and read.records[-1]["sql"] == "SELECT 2"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10)
any_records = st.lists(st.dictionaries(st.text(max_size=10).filter(lambda k: k not in ("seq", "ts")),
                                       json_values, max_size=5), max_size=12)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_records, st.lists(st.integers(1, 5), min_size=1, max_size=12), st.booleans())
def test_any_records_in_any_frames_read_back_the_same(recs, flushes, end):
    """Records of any content, split into frames however flushes fall, read back as given."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    private = X25519PrivateKey.generate()
    sid = new_session_id()
    enc = SessionEncoder(sid, private.public_key())
    data = enc.start({"user": "h"})
    items = [(rec, 1764067921.0 + i) for i, rec in enumerate(recs)]
    pos = 0
    for size in flushes * (len(items) + 1):
        if pos >= len(items):
            break
        out: list[bytes] = []
        enc.records(items, out, pos, min(len(items), pos + size))
        data += b"".join(out) + enc.seal()
        pos += size
    if end:
        data += enc.end({"reason": "closed"}, time.time())
    read = read_log_bytes(data, Keyring.of(private), name=sid.hex())
    assert read.status == (INTACT if end else TRUNCATED) and read.count == len(recs)
    assert [{k: v for k, v in r.items() if k not in ("seq", "ts")} for r in read.records] == recs


async def test_the_writer_writes_one_frame_per_session_and_flush(log_dir, key_file, keyring):
    async with trio.open_nursery() as nursery:
        log = SessionLog(log_dir, key_file, flush_interval=3600)
        await nursery.start(log.run)
        recs = [log.open_session({"user": f"u{i}"}) for i in range(2)]
        for n in (5, 3):
            for i in range(n):
                for rec in recs:
                    rec.record({"sql": f"SELECT {i}"})
            await log.flush()
            # Flushed means on disk and authenticated, with the session still open.
            for rec in recs:
                mid = read_session(log_dir / f"{rec.id}{SUFFIX}", keyring)
                assert mid.status == OPEN and mid.count in (5, 8)
        for rec in recs:
            rec.close()
        await log.flush()
        nursery.cancel_scope.cancel()
    for rec in recs:
        data = (log_dir / f"{rec.id}{SUFFIX}").read_bytes()
        kinds = [(seq, count) for _, _, seq, count in frames_of(data)]
        assert kinds == [(0, 1), (1, 5), (6, 3), (9, 1)]
        read = read_log_bytes(data, keyring)
        assert read.status == INTACT and read.count == 8 and read.header["format"] == 2
        assert [r["sql"] for r in read.records] == [f"SELECT {i}" for i in (*range(5), *range(3))]
