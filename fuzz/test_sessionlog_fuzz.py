"""Hypothesis properties of the session log format.

- any sequence of records round-trips, however they are grouped into frames (flushes);
- the writer's bulk fast path writes the very bytes the general path (json.dumps of a copy) does;
- any single-byte change anywhere is detected, as tampering;
- any truncation reads as truncated, never as intact or tampered;
- the reader never raises, whatever the bytes.

Short runs by default; WIREPROXY_SLOW=1 runs them long.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wireproxy.sessionlog import INTACT, TAMPERED, TRUNCATED, UNREADABLE, Keyring, SessionEncoder, new_session_id, read_log_bytes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit" / "sessionlog"))
from sessionlog_helpers import general_path_only, twin_encoders  # noqa: E402

SLOW = bool(os.environ.get("WIREPROXY_SLOW"))
EXAMPLES = 1000 if SLOW else 60
LONG_EXAMPLES = 4000 if SLOW else 150
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

PRIVATE = X25519PrivateKey.generate()
KEYRING = Keyring.of(PRIVATE)

json_scalars = st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.text(max_size=40) | st.floats(
    allow_nan=False)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=10), inner, max_size=4), max_leaves=12)
records = st.lists(st.dictionaries(st.text(max_size=12).filter(lambda k: k not in ("seq", "ts")), json_values,
                                   max_size=6), max_size=8)


def encode(recs: list[dict], end: bool = True, per_frame: int = 3) -> tuple[str, bytes]:
    """A log with `per_frame` records to a frame (a flush), as the writer writes them."""
    sid = new_session_id()
    enc = SessionEncoder(sid, PRIVATE.public_key())
    now = time.time()
    data = enc.start({"user": "fuzz"})
    items = [(rec, now) for rec in recs]
    for first in range(0, len(items), per_frame):
        out: list[bytes] = []
        enc.records(items, out, first, min(len(items), first + per_frame))
        data += b"".join(out) + enc.seal()
    if end:
        data += enc.end({"reason": "closed"}, now)
    return sid.hex(), data


@settings(max_examples=EXAMPLES, **SETTINGS)
@given(records, st.booleans(), st.integers(1, 9))
def test_any_records_round_trip(recs, end, per_frame):
    sid, data = encode(recs, end, per_frame)
    read = read_log_bytes(data, KEYRING, name=sid)
    assert read.status == (INTACT if end else TRUNCATED)
    assert read.count == len(recs)
    assert [{k: v for k, v in r.items() if k not in ("seq", "ts")} for r in read.records] == recs


any_keys = st.text(max_size=12) | st.sampled_from(["seq", "ts", "sql", "result_rows"])
any_records = st.lists(st.dictionaries(any_keys, json_values | st.binary(max_size=6) | st.floats(), max_size=6),
                       max_size=8)


@settings(max_examples=EXAMPLES, **SETTINGS)
@given(any_records, st.lists(st.floats(0, 4e9), min_size=8, max_size=8))
def test_bulk_fast_path_is_byte_identical_to_the_general_path(recs, stamps):
    fast, general = twin_encoders(PRIVATE.public_key())
    items = [(rec, stamps[i]) for i, rec in enumerate(recs)]
    out: list[bytes] = []
    one = fast.start({"user": "fuzz"})
    fast.records(items, out)
    one += b"".join(out) + fast.end({"reason": "closed"}, 0.0)
    two = general.start({"user": "fuzz"})
    with general_path_only():
        general.records(items, out := [])
    two += b"".join(out) + general.end({"reason": "closed"}, 0.0)
    assert one == two
    read = read_log_bytes(one, KEYRING)
    assert read.status == INTACT and read.count == len(recs)


@settings(max_examples=EXAMPLES, **SETTINGS)
@given(records, st.data())
def test_any_single_byte_change_is_detected(recs, data):
    sid, log = encode(recs)
    pos = data.draw(st.integers(0, len(log) - 1), label="position")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != log[pos]), label="byte")
    damaged = bytearray(log)
    damaged[pos] = new
    read = read_log_bytes(bytes(damaged), KEYRING, name=sid)
    if pos == 7 and new not in (1, 2):  # the version byte, naming a version this reader does not know
        assert read.status == UNREADABLE and "unsupported session log format version" in read.problem
        return
    assert read.status == TAMPERED, (pos, read.problem)
    assert read.bad_record is not None


@settings(max_examples=EXAMPLES, **SETTINGS)
@given(records, st.data())
def test_any_truncation_is_truncated(recs, data):
    _, log = encode(recs)
    cut = data.draw(st.integers(0, len(log) - 1), label="length")
    read = read_log_bytes(log[:cut], KEYRING)
    assert read.status == TRUNCATED, (cut, read.problem)
    assert read.count <= len(recs) and len(read.records) == read.count


@pytest.mark.slow
@settings(max_examples=LONG_EXAMPLES, **SETTINGS)
@given(records, st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=8)), min_size=1, max_size=4),
       st.integers(0, 10**6))
def test_reader_never_raises_and_never_says_intact_for_changed_bytes(recs, edits, cut):
    sid, log = encode(recs)
    damaged = bytearray(log)
    for pos, blob in edits:
        pos %= len(damaged) + 1
        damaged[pos:pos + len(blob)] = blob
    damaged = bytes(damaged[:max(cut, len(damaged) // 2)])
    read = read_log_bytes(damaged, KEYRING, name=sid)
    if damaged != log:
        assert read.status != INTACT, read.problem
    read_log_bytes(damaged, KEYRING, decrypt_all=False)


@pytest.mark.slow
@settings(max_examples=LONG_EXAMPLES, **SETTINGS)
@given(st.binary(max_size=400))
def test_reader_never_raises_on_garbage(blob):
    read_log_bytes(blob, KEYRING)
    _, log = encode([])
    read_log_bytes(log[:108] + blob, KEYRING)
