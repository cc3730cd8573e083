"""The on-disk format of a session log, version 1: constants, framing, and the pure encoder.

One file per session, `<session id>.wpl`, append-only:

    preamble   108 bytes, in clear, fixed size (no length field to corrupt)
      magic        8   b"WPSLOG\\x00\\x01"
      session id  12   6 bytes big-endian milliseconds since the epoch + 6 random bytes
      key id       8   first 8 bytes of SHA-256 of the raw X25519 public key the log is written for
      epk         32   the session's ephemeral X25519 public key
      wrapped     48   the session's AES-256 data key, AES-256-GCM under a key-encryption key
                       KEK = HKDF-SHA256(X25519(ephemeral, recipient), salt = epk || recipient,
                                         info = "wireproxy-sessionlog-v1 wrap" || session id)
    frame*     one per record
      length       4   u32, bytes of ciphertext (plaintext + 16-byte GCM tag)
      seq          8   u64, 0 for the session header, 1..n for records, n+1 for the final record
      kind         1   1 header, 2 record, 3 final
      pad          3   zero
      crc          4   CRC-32 of the 16 bytes before it: tells a corrupted frame header from a torn one
      ciphertext       AES-256-GCM(data key, nonce = 4 zero bytes || u64 seq, JSON plaintext,
                         associated data = "wireproxy-sessionlog-v1" || session id || u64 seq
                                           || kind || chain[seq])

The hash chain: chain[0] = SHA-256("wireproxy-sessionlog-v1 chain" || preamble) and
chain[s+1] = SHA-256(chain[s] || frame s), over the frame's bytes as written (header and
ciphertext). Record s authenticates chain[s], so it authenticates every byte before it; the
final record (kind 3, seq n+1) holds `records` = n and `chain` = chain[n+1] in its plaintext and
is itself bound to that chain value: an intact final record vouches for the whole file.

What is in clear, and why: the magic, the session id, the key id, the ephemeral public key and
the wrapped data key. The reader needs the key id to pick a private key and the wrapped key to
unwrap the data key; the session id names the file. The session id carries the start time to
the millisecond: retention on the proxy host (which has no private key) must know a log's age,
and listing sorts by it. Everything the session says — user, database, client address,
application, upstream, every statement and its outcome — is in encrypted frames. Frame lengths
(so record sizes and counts) are visible; that is the price of a log that can be verified
frame by frame and cut at a torn record.

The cost of a record: the writer's hot path is `SessionEncoder.records`, a tight loop per
session and flush that JSON-encodes a record with a reused C encoder (no per-call encoder set-up,
no copy of the record: `seq` and `ts` are spliced onto the end of the object's JSON text, which
gives the same bytes `json.dumps({**record, "seq": s, "ts": t})` would), then encrypts, frames
and chains it. Records it cannot take that way (not a plain dict, a `seq` or `ts` key of their
own, values the C encoder refuses, lone surrogates, oversized) go the general way, `_bounded`.
One frame per record is deliberate: a crash or a cut at any frame boundary leaves every record
before it authenticated and readable, and `verify` names the exact record that was altered.

This module is pure: no files, no clock, no trio. The writer and the reader use it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import struct
import time
import zlib
from typing import Any, Callable, Sequence

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

try:
    from json.encoder import c_encode_basestring as _c_escape, c_make_encoder as _c_make_encoder
except ImportError:  # pragma: no cover - no C accelerator (PyPy): the general path does it all
    _c_escape = _c_make_encoder = None

MAGIC = b"WPSLOG\x00\x01"
SUFFIX = ".wpl"
SID_LEN = 12
KEY_ID_LEN = 8
EPK_LEN = 32
WRAPPED_LEN = 48
PREAMBLE = struct.Struct(f">{len(MAGIC)}s{SID_LEN}s{KEY_ID_LEN}s{EPK_LEN}s{WRAPPED_LEN}s")
FRAME_HEAD = struct.Struct(">IQB3x")      # what the CRC covers
FRAME_CRC = struct.Struct(">I")
FRAME_SIZE = FRAME_HEAD.size + FRAME_CRC.size  # 20
TAG_LEN = 16
MAX_CIPHERTEXT = 64 * 1024 * 1024           # the reader refuses larger frames as corrupt
MAX_RECORD_PLAINTEXT = 16 * 1024 * 1024     # the writer shrinks larger records (see SessionEncoder)

KIND_HEADER = 1
KIND_RECORD = 2
KIND_END = 3
KIND_NAMES = {KIND_HEADER: "session header", KIND_RECORD: "record", KIND_END: "final record"}

_LABEL = b"wireproxy-sessionlog-v1"
_CHAIN_INIT = _LABEL + b" chain"
_WRAP_INFO = _LABEL + b" wrap"
_WRAP_NONCE = bytes(12)                     # the KEK is used once, for one message
_AAD_TAIL = struct.Struct(">QB")
_NONCE = struct.Struct(">4xQ")


# --- session ids ---------------------------------------------------------------------------


_last_id = bytes(SID_LEN)


def new_session_id(now: float | None = None) -> bytes:
    """12 bytes: milliseconds since the epoch (6, big-endian) then 6 random bytes.

    Hex-encoded (24 characters) it sorts by start time, like a ULID; ids made by one process
    in the same millisecond sort in the order they were made (the random part counts up)."""
    global _last_id
    ms = int((time.time() if now is None else now) * 1000)
    sid = ms.to_bytes(6, "big") + os.urandom(6)
    if sid[:6] == _last_id[:6] and sid <= _last_id and _last_id[6:] != b"\xff" * 6:
        sid = (int.from_bytes(_last_id, "big") + 1).to_bytes(SID_LEN, "big")
    _last_id = sid
    return sid


def session_started(session_id: bytes | str) -> _dt.datetime:
    """The start time a session id carries (UTC)."""
    raw = bytes.fromhex(session_id) if isinstance(session_id, str) else session_id
    ms = int.from_bytes(raw[:6], "big")
    return _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc)


def is_session_id(text: str) -> bool:
    if len(text) != 2 * SID_LEN:
        return False
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


_iso_second: tuple[int, str] = (-1, "")
_iso_last: tuple[int, str] = (-1, "")


def iso(ts: float | _dt.datetime) -> str:
    """UTC timestamp as ISO 8601 with milliseconds and a Z: 2025-11-25T10:52:01.123Z."""
    global _iso_second, _iso_last
    if isinstance(ts, _dt.datetime):
        return ts.astimezone(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    ms = int(ts * 1000)
    last_ms, text = _iso_last
    if ms == last_ms:  # many records share a millisecond at full speed
        return text
    second, millis = divmod(ms, 1000)
    cached, prefix = _iso_second
    if second != cached:  # one formatting per second, not per record
        prefix = _dt.datetime.fromtimestamp(second, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _iso_second = (second, prefix)
    text = f"{prefix}.{millis:03d}Z"
    _iso_last = (ms, text)
    return text


# --- crypto helpers ------------------------------------------------------------------------


def key_id_of(public_key: X25519PublicKey) -> bytes:
    return hashlib.sha256(public_key.public_bytes_raw()).digest()[:KEY_ID_LEN]


def _kek(shared: bytes, epk: bytes, recipient: bytes, session_id: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=epk + recipient,
                info=_WRAP_INFO + session_id).derive(shared)


def wrap_data_key(data_key: bytes, recipient: X25519PublicKey, session_id: bytes) -> tuple[bytes, bytes]:
    """-> (ephemeral public key, wrapped data key)."""
    ephemeral = X25519PrivateKey.generate()
    epk = ephemeral.public_key().public_bytes_raw()
    kek = _kek(ephemeral.exchange(recipient), epk, recipient.public_bytes_raw(), session_id)
    return epk, AESGCM(kek).encrypt(_WRAP_NONCE, data_key, _WRAP_INFO + session_id)


def unwrap_data_key(private_key: X25519PrivateKey, epk: bytes, wrapped: bytes, session_id: bytes) -> bytes | None:
    """The data key, or None when this private key cannot unwrap it (other key, or altered)."""
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(epk))
        kek = _kek(shared, epk, private_key.public_key().public_bytes_raw(), session_id)
        data_key = AESGCM(kek).decrypt(_WRAP_NONCE, wrapped, _WRAP_INFO + session_id)
    except Exception:  # InvalidTag, or ValueError for a low-order point
        return None
    return data_key if len(data_key) == 32 else None


def chain_start(preamble: bytes) -> bytes:
    return hashlib.sha256(_CHAIN_INIT + preamble).digest()


def chain_next(chain: bytes, frame: bytes) -> bytes:
    return hashlib.sha256(chain + frame).digest()


def nonce(seq: int) -> bytes:
    return _NONCE.pack(seq)


def aad(session_id: bytes, seq: int, kind: int, chain: bytes) -> bytes:
    return _LABEL + session_id + _AAD_TAIL.pack(seq, kind) + chain


def frame_head(length: int, seq: int, kind: int) -> bytes:
    head = FRAME_HEAD.pack(length, seq, kind)
    return head + FRAME_CRC.pack(zlib.crc32(head))


# --- JSON ------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()          # PostgreSQL's bytea hex form
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)                              # Decimal, UUID, IP addresses, enums...


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default)
_ASCII_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, default=_json_default)


# The hot path's encoder: the same settings as _ENCODER, made once rather than on every call as
# JSONEncoder.encode does. No circular-reference markers (shared state, and a cost per container):
# a cycle ends in RecursionError, and the record then takes the general path, which names it.
_hot_encoder = (_c_make_encoder(None, _json_default, _c_escape, None, ":", ",", False, False, True)
                if _c_make_encoder is not None else None)


def dumps(obj: Any) -> bytes:
    text = _ENCODER.encode(obj)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate (undecodable input): JSON escapes carry it
        return _ASCII_ENCODER.encode(obj).encode()


# --- the encoder ---------------------------------------------------------------------------


class SessionEncoder:
    """Turns one session's header, records and end into log bytes. No I/O, no clock.

    `start(header)` returns the preamble and the encrypted header record; `record(entry, ts)`
    and `end(fields, ts)` return one frame each. Concatenated in order they are the file.
    """

    def __init__(self, session_id: bytes, public_key: X25519PublicKey, key_id: bytes | None = None):
        if len(session_id) != SID_LEN:
            raise ValueError("session id must be 12 bytes")
        self.session_id = session_id
        self.key_id = key_id if key_id is not None else key_id_of(public_key)
        data_key = os.urandom(32)
        epk, wrapped = wrap_data_key(data_key, public_key, session_id)
        self.preamble = PREAMBLE.pack(MAGIC, session_id, self.key_id, epk, wrapped)
        self._aead = AESGCM(data_key)
        self._aad_prefix = _LABEL + session_id
        self.chain = chain_start(self.preamble)
        self.seq = 0
        self.ended = False

    def _frame(self, kind: int, plaintext: bytes) -> bytes:
        seq = self.seq
        ciphertext = self._aead.encrypt(nonce(seq), plaintext, aad(self.session_id, seq, kind, self.chain))
        frame = frame_head(len(ciphertext), seq, kind) + ciphertext
        self.chain = chain_next(self.chain, frame)
        self.seq = seq + 1
        return frame

    def start(self, header: dict[str, Any]) -> bytes:
        if self.seq != 0:
            raise RuntimeError("header already written")
        body = dict(header)
        body["seq"] = 0
        return self.preamble + self._frame(KIND_HEADER, _bounded(body))

    def record(self, entry: dict[str, Any], ts: float) -> bytes:
        out: list[bytes] = []
        self.records(((entry, ts),), out)
        return out[0]

    def records(self, items: Sequence[tuple[dict[str, Any], float]], out: list[bytes], start: int = 0,
                stop: int | None = None, *, results: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        """Append one frame per `(entry, ts)` of `items[start:stop]` to `out`, in order.

        The same bytes as calling `record` for each, only cheaper. `results`, when given, is
        applied to each entry that has "result_rows" first (the writer trims them to the
        session's byte cap there). Should anything raise, the frames of the records before it are
        in `out` and the encoder stands right after them: `len(out)` tells where to go on from."""
        if self.seq == 0 or self.ended:
            raise RuntimeError("record outside a session")
        if stop is None:
            stop = len(items)
        seq, chain = self.seq, self.chain
        encrypt = self._aead.encrypt
        aad_prefix = self._aad_prefix
        append = out.append
        encode = _hot_encoder
        join = "".join
        pack_nonce, pack_tail, pack_head, pack_crc = _NONCE.pack, _AAD_TAIL.pack, FRAME_HEAD.pack, FRAME_CRC.pack
        crc32, sha256 = zlib.crc32, hashlib.sha256
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
                ciphertext = encrypt(pack_nonce(seq), plaintext, aad_prefix + pack_tail(seq, KIND_RECORD) + chain)
                head = pack_head(len(ciphertext), seq, KIND_RECORD)
                frame = head + pack_crc(crc32(head)) + ciphertext
                next_chain = sha256(chain + frame).digest()
                append(frame)
                chain, seq = next_chain, seq + 1
        finally:
            self.seq, self.chain = seq, chain

    def end(self, fields: dict[str, Any], ts: float) -> bytes:
        if self.seq == 0 or self.ended:
            raise RuntimeError("end outside a session")
        body = dict(fields)
        body.update(seq=self.seq, ts=iso(ts), records=self.seq - 1, chain=self.chain.hex())
        self.ended = True
        return self._frame(KIND_END, dumps(body))


def _bounded(body: dict[str, Any]) -> bytes:
    """JSON for a record; a record that will not serialise or is absurdly large is replaced by
    a note saying so (keeping its small fields), never dropped."""
    try:
        data = dumps(body)
    except Exception as exc:  # TypeError, ValueError, RecursionError, or a __str__ that raises
        data = None
        note = {"unserialisable": f"{exc.__class__.__name__}: {exc}"[:500]}
    else:
        if len(data) <= MAX_RECORD_PLAINTEXT:
            return data
        note = {"oversized": len(data)}
    small: dict[str, Any] = {}
    for key, value in body.items():
        if isinstance(value, (int, float, bool)) or value is None:
            small[key] = value
        elif isinstance(value, str):
            small[key] = value[:4096]
    small.update(note)
    return dumps(small)
