"""Helpers for the session log tests: logs built in memory, as the writer would write them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from wireproxy.sessionlog import SUFFIX, SessionEncoder, load_public_key, new_session_id
from wireproxy.sessionlog.format import FRAME_HEAD, FRAME_SIZE, PREAMBLE


def encode_log(key_file: Path, records: list[dict[str, Any]], *, header: dict[str, Any] | None = None,
               end: bool = True, started: float | None = None, per_frame: int = 1) -> tuple[str, bytes]:
    """A whole log in memory, as the writer would write it, `per_frame` records to a frame (a
    flush). -> (session id, bytes)."""
    public = load_public_key(str(key_file) + ".pub")
    sid = new_session_id(started)
    enc = SessionEncoder(sid, public)
    now = time.time() if started is None else started
    data = enc.start({"user": "alice", "database": "shop", "client_addr": "127.0.0.1:50000",
                      "started": "", **(header or {})})
    items = [(rec, now + i * 0.001) for i, rec in enumerate(records)]
    for first in range(0, len(items), per_frame):
        out: list[bytes] = []
        enc.records(items, out, first, min(len(items), first + per_frame))
        data += b"".join(out) + enc.seal()
    if end:
        data += enc.end({"reason": "closed"}, now + len(records) * 0.001)
    return sid.hex(), data


def write_log(log_dir: Path, key_file: Path, records: list[dict[str, Any]], **kw: Any) -> Path:
    log_dir.mkdir(parents=True, exist_ok=True)
    sid, data = encode_log(key_file, records, **kw)
    path = log_dir / f"{sid}{SUFFIX}"
    path.write_bytes(data)
    return path


def frame_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every frame of a well-formed version-2 log (with one record a frame,
    frame i holds seq i)."""
    return [(start, end) for start, end, _, _ in frames_of(data)]


def frames_of(data: bytes, head=FRAME_HEAD, size: int = FRAME_SIZE) -> list[tuple[int, int, int, int]]:
    """(start, end, first seq, count) of every frame of a well-formed log: version 2, or
    version 1 with `head=V1_FRAME_HEAD, size=V1_FRAME_SIZE`."""
    frames = []
    off = PREAMBLE.size
    while off + size <= len(data):
        length, seq, *rest = head.unpack_from(data, off)
        count = rest[0] if len(rest) == 2 else 1
        frames.append((off, off + size + length, seq, count))
        off += size + length
    return frames


def statements(n: int, marker: str = "") -> list[dict[str, Any]]:
    return [{"sql": f"SELECT {i} /* {marker} */", "protocol": "simple", "decision": "allow", "rules": [],
             "duration_ms": 0.1 * i, "rows": 1, "tag": "SELECT 1"} for i in range(n)]


def twin_encoders(public_key, session_id: bytes | None = None, count: int = 2) -> list[SessionEncoder]:
    """Encoders for one session with the same data key: their bytes can be compared."""
    from unittest import mock

    from wireproxy.sessionlog import format as fmt

    sid = session_id or new_session_id()
    data_key = fmt.os.urandom(32)
    epk_wrapped = fmt.wrap_data_key(data_key, public_key, sid)
    encoders = []
    for _ in range(count):
        with mock.patch.object(fmt.os, "urandom", lambda n: data_key[:n]), \
                mock.patch.object(fmt, "wrap_data_key", lambda *a: epk_wrapped):
            encoders.append(SessionEncoder(sid, public_key))
    return encoders


def general_path_only():
    """A context in which SessionEncoder takes the general (json.dumps of a copy) path for every
    record: what the fast path must match byte for byte."""
    from unittest import mock

    from wireproxy.sessionlog import encoder

    return mock.patch.object(encoder, "_hot_encoder", None)
