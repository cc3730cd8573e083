"""The on-disk format of a session log: constants, framing helpers, ids, JSON. Pure: no files,
no clock, no trio; encoder.py writes it, frames.py and reader.py read it.

One file per session, `<session id>.wpl`, append-only. Version 2, what the writer writes
(version 1 is still read; see the end of this text):

    preamble   108 bytes, in clear, fixed size (no length field to corrupt)
      magic        8   b"WPSLOG\\x00" then the format version byte, 2
      session id  12   6 bytes big-endian milliseconds since the epoch + 6 random bytes
      key id       8   first 8 bytes of SHA-256 of the raw X25519 public key the log is written for
      epk         32   the session's ephemeral X25519 public key
      wrapped     48   the session's AES-256 data key, AES-256-GCM under a key-encryption key
                       KEK = HKDF-SHA256(X25519(ephemeral, recipient), salt = epk || recipient,
                                         info = "wireproxy-sessionlog-v2 wrap" || session id)
    frame*     one per flush of the session (a header frame first, a final frame last)
      length       4   u32, bytes of ciphertext (plaintext + 16-byte GCM tag)
      seq          8   u64, seq of the frame's first record: 0 the header, 1..n records, n+1 the final
      count        4   u32, records in the frame (1 for the header and the final frame)
      kind         1   1 header, 2 records, 3 final
      pad          3   zero
      crc          4   CRC-32 of the 20 bytes before it: tells a corrupted frame header from a torn one
      ciphertext       AES-256-GCM(data key, nonce = 4 zero bytes || u64 seq, plaintext,
                         associated data = "wireproxy-sessionlog-v2" || session id
                                           || the frame's 20 header bytes || chain[frame])
      plaintext        `count` times: u32 length, then that many bytes of one record's JSON

Seqs are per record, so frame k+1 starts at frame k's seq + count; the nonce (the first seq) is
never reused under a data key. The hash chain: chain[0] = SHA-256("wireproxy-sessionlog-v2
chain" || preamble) and chain[f+1] = SHA-256(chain[f] || frame f), over the frame's bytes as
written. Frame f authenticates chain[f], so it authenticates every byte before it: a frame
dropped, reordered, altered, or taken from another session fails. The final frame (kind 3)
holds `records` = n and `chain` = chain[its own index] in its one record and is bound to that
value: an intact final frame vouches for the whole file. Every record carries its own `seq`
and `ts` too, checked against the frame's. A frame whose records reach FRAME_BUDGET bytes is
sealed and the next begins, so no frame grows past MAX_CIPHERTEXT whatever a flush holds.

What is in clear, and why: the magic, the session id, the key id, the ephemeral public key and
the wrapped data key. The reader needs the key id to pick a private key and the wrapped key to
unwrap the data key; the session id names the file. The session id carries the start time to
the millisecond: retention on the proxy host (which has no private key) must know a log's age,
and listing sorts by it. Everything the session says — user, database, client address,
application, upstream, every statement and its outcome — is encrypted. Frame lengths and record
counts per flush are visible (version 1 showed every record's length).

Why one frame per flush: version 1 encrypted, framed and chained every record (about 4 µs of CPU
a record, half of it the per-call cost of AES-GCM, SHA-256 and framing on small inputs); version 2 pays
that once per flush and session. The price: a crash or a cut inside a frame loses that frame's
records (all of one flush, which a crash before the fdatasync loses anyway), and `verify` names
the first record of the frame that was altered, not the exact record.

Version 1 (magic version byte 1, labels "wireproxy-sessionlog-v1"): the same preamble, then one
frame per record: length u32, seq u64, kind u8, pad 3, crc u32 (of the 16 bytes before it), and
AES-256-GCM of one record's JSON with nonce 4 zero bytes || u64 seq and associated data
"wireproxy-sessionlog-v1" || session id || u64 seq || kind || chain[seq]. Readers read it as
ever; nothing writes it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import struct
import time
import zlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC_PREFIX = b"WPSLOG\x00"               # then one byte: the format version
FORMAT_VERSION = 2                          # what the writer writes
READ_VERSIONS = (1, 2)                      # what the reader reads
MAGIC = MAGIC_PREFIX + bytes([FORMAT_VERSION])
SUFFIX = ".wpl"
SID_LEN = 12
KEY_ID_LEN = 8
EPK_LEN = 32
WRAPPED_LEN = 48
PREAMBLE = struct.Struct(f">{len(MAGIC)}s{SID_LEN}s{KEY_ID_LEN}s{EPK_LEN}s{WRAPPED_LEN}s")
FRAME_HEAD = struct.Struct(">IQIB3x")      # version 2: length, seq, count, kind; what the CRC covers
FRAME_CRC = struct.Struct(">I")
FRAME_SIZE = FRAME_HEAD.size + FRAME_CRC.size  # 24
RECORD_LEN = struct.Struct(">I")            # before each record's JSON in a frame's plaintext
V1_FRAME_HEAD = struct.Struct(">IQB3x")    # version 1: length, seq, kind
V1_FRAME_SIZE = V1_FRAME_HEAD.size + FRAME_CRC.size  # 20
TAG_LEN = 16
MAX_CIPHERTEXT = 64 * 1024 * 1024           # the reader refuses larger frames as corrupt
MAX_RECORD_PLAINTEXT = 16 * 1024 * 1024     # the writer shrinks larger records (see SessionEncoder)
FRAME_BUDGET = 1024 * 1024                  # a frame is sealed once its plaintext reaches this

KIND_HEADER = 1
KIND_RECORD = 2
KIND_END = 3
KIND_NAMES = {KIND_HEADER: "session header", KIND_RECORD: "records", KIND_END: "final record"}

LABELS = {1: b"wireproxy-sessionlog-v1", 2: b"wireproxy-sessionlog-v2"}
LABEL = LABELS[FORMAT_VERSION]
_WRAP_NONCE = bytes(12)                     # the KEK is used once, for one message
_V1_AAD_TAIL = struct.Struct(">QB")
NONCE = struct.Struct(">4xQ")


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


def _kek(shared: bytes, epk: bytes, recipient: bytes, session_id: bytes, version: int) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=epk + recipient,
                info=LABELS[version] + b" wrap" + session_id).derive(shared)


def wrap_data_key(data_key: bytes, recipient: X25519PublicKey, session_id: bytes,
                  version: int = FORMAT_VERSION) -> tuple[bytes, bytes]:
    """-> (ephemeral public key, wrapped data key)."""
    ephemeral = X25519PrivateKey.generate()
    epk = ephemeral.public_key().public_bytes_raw()
    kek = _kek(ephemeral.exchange(recipient), epk, recipient.public_bytes_raw(), session_id, version)
    return epk, AESGCM(kek).encrypt(_WRAP_NONCE, data_key, LABELS[version] + b" wrap" + session_id)


def unwrap_data_key(private_key: X25519PrivateKey, epk: bytes, wrapped: bytes, session_id: bytes,
                    version: int = FORMAT_VERSION) -> bytes | None:
    """The data key, or None when this private key cannot unwrap it (other key, or altered).
    The label is the version's: a preamble whose version byte was changed does not unwrap."""
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(epk))
        kek = _kek(shared, epk, private_key.public_key().public_bytes_raw(), session_id, version)
        data_key = AESGCM(kek).decrypt(_WRAP_NONCE, wrapped, LABELS[version] + b" wrap" + session_id)
    except Exception:  # InvalidTag, or ValueError for a low-order point
        return None
    return data_key if len(data_key) == 32 else None


def chain_start(preamble: bytes, version: int = FORMAT_VERSION) -> bytes:
    return hashlib.sha256(LABELS[version] + b" chain" + preamble).digest()


def chain_next(chain: bytes, frame: bytes | memoryview) -> bytes:
    digest = hashlib.sha256(chain)
    digest.update(frame)
    return digest.digest()


def nonce(seq: int) -> bytes:
    return NONCE.pack(seq)


def aad(session_id: bytes, head: bytes | memoryview, chain: bytes) -> bytes:
    """Version 2: what a frame's ciphertext is bound to, `head` being its 20 header bytes."""
    return LABEL + session_id + bytes(head) + chain


def v1_aad(session_id: bytes, seq: int, kind: int, chain: bytes) -> bytes:
    return LABELS[1] + session_id + _V1_AAD_TAIL.pack(seq, kind) + chain


def frame_head(length: int, seq: int, count: int, kind: int) -> bytes:
    """Version 2: the 24 bytes before a frame's ciphertext (CRC included)."""
    head = FRAME_HEAD.pack(length, seq, count, kind)
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


def dumps(obj: Any) -> bytes:
    text = _ENCODER.encode(obj)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate (undecodable input): JSON escapes carry it
        return _ASCII_ENCODER.encode(obj).encode()


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
