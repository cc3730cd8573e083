"""A session log's frames as the reader finds them, in either format version (format.py): the
walk over their structure (headers, CRCs, seqs, the hash chain) and the opening of one frame
(decrypt, split into records). reader.py classifies a whole log from these.

Problems are raised or returned as `Stop`: a status (reader.py's TRUNCATED or TAMPERED), one line
saying what is wrong, and the seq of the first record not as written.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .format import (FRAME_CRC, FRAME_HEAD, KIND_END, KIND_HEADER, KIND_NAMES, KIND_RECORD, MAX_CIPHERTEXT,
                     PREAMBLE, RECORD_LEN, TAG_LEN, V1_FRAME_HEAD, aad, chain_next, chain_start, nonce, v1_aad)

TRUNCATED = "truncated"
TAMPERED = "tampered"

_MIN_RECORD = RECORD_LEN.size + 2       # a length and "{}"


class Stop(Exception):
    def __init__(self, status: str, problem: str, bad_record: int | None = None):
        super().__init__(problem)
        self.status, self.problem, self.bad_record = status, problem, bad_record


@dataclass
class Frame:
    seq: int       # of its first record
    count: int     # records in it
    kind: int
    start: int
    end: int
    chain: bytes   # chain value before this frame: what its associated data carries


@dataclass(frozen=True)
class Layout:
    """What differs between the versions' frame headers."""
    version: int
    head: struct.Struct   # what the CRC covers

    @property
    def size(self) -> int:
        return self.head.size + FRAME_CRC.size

    def unpack(self, data: bytes, off: int) -> tuple[int, int, int, int]:
        """-> (length, seq, count, kind) of the frame header at `off`."""
        if self.version == 1:
            length, seq, kind = self.head.unpack_from(data, off)
            return length, seq, 1, kind
        return self.head.unpack_from(data, off)


LAYOUTS = {1: Layout(1, V1_FRAME_HEAD), 2: Layout(2, FRAME_HEAD)}


def records_named(seq: int, count: int) -> str:
    return f"record {seq}" if count == 1 else f"records {seq}–{seq + count - 1}"


def walk(data: bytes, version: int) -> tuple[list[Frame], Stop | None, Stop | None]:
    """Frame boundaries and chain values, checking structure only.

    -> (frames, why the walk stopped early, trailing data after the final frame)."""
    layout = LAYOUTS[version]
    size, head_size = len(data), layout.size
    view = memoryview(data)
    chain = chain_start(bytes(view[:PREAMBLE.size]), version)
    off, seq = PREAMBLE.size, 0
    frames: list[Frame] = []
    while off < size:
        if size - off < head_size:
            if not any(view[off:]):
                return frames, Stop(TRUNCATED, f"zero-filled tail where record {seq} would begin"), None
            return frames, Stop(TRUNCATED, f"record {seq} is torn (the file ends inside its frame header)"), None
        length, fseq, count, kind = layout.unpack(data, off)
        (crc,) = FRAME_CRC.unpack_from(data, off + layout.head.size)
        if zlib.crc32(view[off:off + layout.head.size]) != crc:
            if not any(view[off:]):
                return frames, Stop(TRUNCATED, f"zero-filled tail where record {seq} would begin"), None
            return frames, Stop(TAMPERED, f"record {seq}: frame header altered", seq), None
        if fseq != seq:
            return frames, Stop(TAMPERED, _misplaced(data, off, seq, fseq, layout), seq), None
        problem = _bad_shape(seq, length, count, kind)
        if problem:
            return frames, Stop(TAMPERED, problem, seq), None
        end = off + head_size + length
        if end > size:
            return frames, Stop(TRUNCATED, f"{records_named(seq, count)} torn (the file ends {end - size} "
                                           f"bytes short of the frame's end)"), None
        frames.append(Frame(seq, count, kind, off, end, chain))
        chain = chain_next(chain, view[off:end])
        off, seq = end, seq + count
        if kind == KIND_END:
            if off < size:
                return frames, None, Stop(TAMPERED, f"{size - off} bytes after the final record (inserted)", seq)
            break
    return frames, None, None


def _bad_shape(seq: int, length: int, count: int, kind: int) -> str | None:
    expected = (KIND_HEADER,) if seq == 0 else (KIND_RECORD, KIND_END)
    if kind not in expected:
        return (f"record {seq}: a {KIND_NAMES.get(kind, f'kind {kind}')} frame where a "
                f"{KIND_NAMES[expected[0]]} frame belongs")
    if length < TAG_LEN or length > MAX_CIPHERTEXT:
        return f"record {seq}: impossible length {length}"
    if count < 1 or (kind != KIND_RECORD and count != 1) or count * _MIN_RECORD > length:
        return f"record {seq}: impossible count {count} of records in a frame of {length} bytes"
    return None


def _frame_seqs(data: bytes, off: int, layout: Layout) -> Iterator[int]:
    """Best effort: the seq of each well-formed frame from `off` on."""
    while len(data) - off >= layout.size:
        length, fseq, _, _ = layout.unpack(data, off)
        (crc,) = FRAME_CRC.unpack_from(data, off + layout.head.size)
        if zlib.crc32(data[off:off + layout.head.size]) != crc:
            return
        yield fseq
        off += layout.size + length


def _misplaced(data: bytes, off: int, seq: int, found: int, layout: Layout) -> str:
    if found < seq:
        return f"record {found} appears again where record {seq} belongs (duplicated or reordered)"
    if seq in _frame_seqs(data, off, layout):
        return f"records out of order: record {found} is where record {seq} belongs (reordered)"
    missing = records_named(seq, found - seq)
    return f"{missing} {'is' if found - seq == 1 else 'are'} missing (removed): record {found} follows record {seq - 1}"


def open_frame(aead: AESGCM, sid: bytes, data: bytes, frame: Frame, version: int, torn_ok: bool) -> list[dict[str, Any]]:
    """Decrypt one frame and check its records. -> their bodies, in order. Raises Stop."""
    layout = LAYOUTS[version]
    seq, kind, named = frame.seq, frame.kind, records_named(frame.seq, frame.count)
    ciphertext = data[frame.start + layout.size:frame.end]
    if version == 1:
        associated = v1_aad(sid, seq, kind, frame.chain)
    else:
        associated = aad(sid, data[frame.start:frame.start + layout.head.size], frame.chain)
    try:
        plaintext = aead.decrypt(nonce(seq), ciphertext, associated)
    except InvalidTag:
        if torn_ok and not any(ciphertext[-TAG_LEN:]):
            raise Stop(TRUNCATED, f"{named} torn (zero-filled: written but never synced)") from None
        verb = "fails" if frame.count == 1 else "fail"
        raise Stop(TAMPERED, f"{named} {verb} authentication: altered, or not written in "
                             f"this place of this session", seq) from None
    texts = [plaintext] if version == 1 else _split(plaintext, frame.count)
    bodies = []
    for offset, text in enumerate(texts or ()):
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("seq") != seq + offset:
            texts = None
            break
        bodies.append(body)
    if texts is None:
        raise Stop(TAMPERED, f"{named}: authentic but malformed content", seq)
    return bodies


def _split(plaintext: bytes, count: int) -> list[bytes] | None:
    """A version-2 frame's plaintext as its `count` records, or None when it is not that."""
    texts, off, size = [], 0, len(plaintext)
    for _ in range(count):
        if size - off < RECORD_LEN.size:
            return None
        (length,) = RECORD_LEN.unpack_from(plaintext, off)
        off += RECORD_LEN.size
        if length > size - off:
            return None
        texts.append(plaintext[off:off + length])
        off += length
    return texts if off == size else None
