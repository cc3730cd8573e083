"""SessionEncoder: one session's header, records and end as log bytes, format version 2 (see
format.py). No I/O, no clock, no trio: the writer calls it on the trio thread.

The hot path is `records`, a tight loop per session and flush: it JSON-encodes a record with a
reused C encoder (no per-call encoder set-up, no copy of the record: `seq` and `ts` are spliced
onto the end of the object's JSON text, which gives the same bytes `json.dumps({**record, "seq":
s, "ts": t})` would) and appends it, length-prefixed, to the open frame. Encryption, framing and
the hash chain are paid once per frame, in `seal`, which the writer calls once per flush: for
small records they were most of what a record cost when each record had its own frame. Records
the fast path cannot take (not a plain dict, a `seq` or `ts` key of their own, values the C
encoder refuses, lone surrogates, oversized) go the general way, format._bounded.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable, Sequence

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .format import (FRAME_BUDGET, FRAME_CRC, FRAME_HEAD, KIND_END, KIND_HEADER, KIND_RECORD, LABEL, MAGIC,
                     MAX_RECORD_PLAINTEXT, NONCE, PREAMBLE, RECORD_LEN, SID_LEN, TAG_LEN, _bounded,
                     _json_default, chain_next, chain_start, iso, key_id_of)
from . import format as _format

try:
    from json.encoder import c_encode_basestring as _c_escape, c_make_encoder as _c_make_encoder
except ImportError:  # pragma: no cover - no C accelerator (PyPy): the general path does it all
    _c_escape = _c_make_encoder = None

# The hot path's JSON encoder: format.dumps's settings, made once rather than on every call as
# JSONEncoder.encode does. No circular-reference markers (shared state, and a cost per container):
# a cycle ends in RecursionError, and the record then takes the general path, which names it.
_hot_encoder = (_c_make_encoder(None, _json_default, _c_escape, None, ":", ",", False, False, True)
                if _c_make_encoder is not None else None)


class SessionEncoder:
    """Turns one session's header, records and end into log bytes.

    `start(header)` returns the preamble and the header frame. `records(...)` adds records to
    the open frame and `seal()` returns it as one frame; `end(fields, ts)` seals what is open and
    returns it with the final frame. Concatenated in order the returned bytes are the file.
    `record(entry, ts)` is one record in a frame of its own.
    """

    def __init__(self, session_id: bytes, public_key: X25519PublicKey, key_id: bytes | None = None):
        if len(session_id) != SID_LEN:
            raise ValueError("session id must be 12 bytes")
        self.session_id = session_id
        self.key_id = key_id if key_id is not None else key_id_of(public_key)
        data_key = _format.os.urandom(32)
        epk, wrapped = _format.wrap_data_key(data_key, public_key, session_id)
        self.preamble = PREAMBLE.pack(MAGIC, session_id, self.key_id, epk, wrapped)
        self._aead = AESGCM(data_key)
        self._aad_prefix = LABEL + session_id
        self.chain = chain_start(self.preamble)
        self.seq = 0                    # the next record's seq
        self.ended = False
        # The open frame: length prefixes and JSON texts, alternating. While it is empty,
        # `_first == seq`; `_size` is its plaintext's length.
        self._parts: list[bytes] = []
        self._size = 0
        self._first = 0

    @property
    def pending(self) -> int:
        """Records in the open frame: encoded, not yet sealed."""
        return self.seq - self._first

    def _frame(self, kind: int, first: int, count: int, plaintext: bytes) -> bytes:
        head = FRAME_HEAD.pack(len(plaintext) + TAG_LEN, first, count, kind)
        ciphertext = self._aead.encrypt(NONCE.pack(first), plaintext, self._aad_prefix + head + self.chain)
        frame = head + FRAME_CRC.pack(zlib.crc32(head)) + ciphertext
        self.chain = chain_next(self.chain, frame)
        return frame

    def start(self, header: dict[str, Any]) -> bytes:
        if self.seq != 0:
            raise RuntimeError("header already written")
        body = dict(header)
        body["seq"] = 0
        text = _bounded(body)
        frame = self._frame(KIND_HEADER, 0, 1, RECORD_LEN.pack(len(text)) + text)
        self.seq = self._first = 1
        return self.preamble + frame

    def record(self, entry: dict[str, Any], ts: float) -> bytes:
        """One record, sealed in a frame of its own (what is open is sealed before it)."""
        out = [self.seal()]
        self.records(((entry, ts),), out)
        out.append(self.seal())
        return b"".join(out)

    def seal(self) -> bytes:
        """The open frame, encrypted, framed and chained; b"" when no record is open."""
        if not self._parts:
            return b""
        first = self._first
        frame = self._frame(KIND_RECORD, first, self.seq - first, b"".join(self._parts))
        self._parts, self._size, self._first = [], 0, self.seq
        return frame

    def records(self, items: Sequence[tuple[dict[str, Any], float]], out: list[bytes], start: int = 0,
                stop: int | None = None, *, results: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        """Add each `(entry, ts)` of `items[start:stop]` to the open frame, in order; a frame that
        reaches FRAME_BUDGET bytes is sealed onto `out` and a new one opened.

        `results`, when given, is applied first to each entry that has "result_rows" (the writer
        trims them to the session's byte cap there). Should anything raise, the records before
        it are in (`seq` stands right after them) and the one that raised is not: the caller
        goes on from `start + seq - seq before`."""
        if self.seq == 0 or self.ended:
            raise RuntimeError("record outside a session")
        if stop is None:
            stop = len(items)
        seq, size, parts = self.seq, self._size, self._parts
        append = parts.append
        encode = _hot_encoder
        join = "".join
        pack_len = RECORD_LEN.pack
        try:
            for index in range(start, stop):
                entry, ts = items[index]
                plaintext = None
                if results is not None and "result_rows" in entry:
                    entry = results(entry)
                if encode is not None and type(entry) is dict and "seq" not in entry and "ts" not in entry:
                    try:
                        text = join(encode(entry, 0))
                        tail = f'"seq":{seq},"ts":"{iso(ts)}"}}'
                        plaintext = (text[:-1] + ("," if len(text) > 2 else "") + tail).encode()
                    except Exception:  # odd values, a cycle, a lone surrogate: the general path
                        plaintext = None
                    else:
                        if len(plaintext) > MAX_RECORD_PLAINTEXT:
                            plaintext = None
                if plaintext is None:
                    body = dict(entry)
                    body["seq"] = seq
                    body["ts"] = iso(ts)
                    plaintext = _bounded(body)
                append(pack_len(len(plaintext)))
                append(plaintext)
                size += 4 + len(plaintext)
                seq += 1
                if size >= FRAME_BUDGET:
                    self.seq = seq
                    out.append(self.seal())
                    size, parts = 0, self._parts
                    append = parts.append
        finally:
            self.seq, self._size = seq, size

    def end(self, fields: dict[str, Any], ts: float) -> bytes:
        """The open frame (if any) and the final frame, which vouches for everything before it."""
        if self.seq == 0 or self.ended:
            raise RuntimeError("end outside a session")
        pending = self.seal()
        body = dict(fields)
        body.update(seq=self.seq, ts=iso(ts), records=self.seq - 1, chain=self.chain.hex())
        text = _bounded(body)
        self.ended = True
        return pending + self._frame(KIND_END, self.seq, 1, RECORD_LEN.pack(len(text)) + text)
