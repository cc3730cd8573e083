"""Reading and verifying session logs.

`read_log_bytes` classifies a log as one of:
  intact      header, records and a final record that vouches for all of them
  open        no final record yet, and the writer still holds the file's lock
  truncated   a crash: the file ends at or inside a record (torn write, zero-filled tail) before
              the final record; `count` records are intact and readable
  tampered    something was altered, reordered, removed or inserted; `bad_record` names the
              first record that is not as written, `problem` says how
  unreadable  none of the private keys held can open it (wrong key file), or it is of a format
              version this reader does not know (a newer wireproxy's)

Both format versions are read (format.py); frames.py walks and opens the frames of either.
Truncation is what a crash leaves, and also what someone who cuts the end off a file leaves: the
two cannot be told apart, which is why a log is only "intact" with its sealed final record.
Every decrypted frame authenticates the hash chain of all bytes before it, so reading the
header and the last complete frame (`decrypt_all=False`, what `list` does) already proves the
whole prefix; `verify` decrypts every frame anyway, to name the first bad one.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import SessionLogError
from .format import (KIND_END, KIND_HEADER, KIND_RECORD, MAGIC_PREFIX, PREAMBLE, READ_VERSIONS, SUFFIX,
                     is_session_id, session_started)
from .frames import TAMPERED, TRUNCATED, Frame, Stop, open_frame, walk
from .keys import Keyring

try:
    import fcntl
except ImportError:  # pragma: no cover - not Unix
    fcntl = None  # type: ignore[assignment]

INTACT = "intact"
OPEN = "open"
UNREADABLE = "unreadable"

# `wireproxy sessions verify` exit codes; several logs: the first in this order that occurs wins.
EXIT_CODES = {INTACT: 0, OPEN: 0, TAMPERED: 1, UNREADABLE: 2, TRUNCATED: 3}
_SEVERITY = [TAMPERED, UNREADABLE, TRUNCATED, OPEN, INTACT]


def worst_exit_code(statuses: list[str]) -> int:
    for status in _SEVERITY:
        if status in statuses:
            return EXIT_CODES[status]
    return 0


@dataclass
class SessionLogRead:
    path: Path | None
    session_id: str
    key_id: str = ""
    status: str = TRUNCATED
    header: dict[str, Any] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None
    problem: str | None = None
    bad_record: int | None = None   # seq of the first record not as written (0 = the header)
    count: int = 0                  # records intact (with decrypt_all=False: counted, proven by the chain)

    @property
    def started(self) -> _dt.datetime | None:
        return session_started(self.session_id) if is_session_id(self.session_id) else None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def ok(self) -> bool:
        return self.status in (INTACT, OPEN)

    def describe(self) -> str:
        """One line: what verify says about this log."""
        records = f"{self.count} record" + ("" if self.count == 1 else "s")
        if self.status == INTACT:
            return f"intact: {records}, sealed"
        if self.status == OPEN:
            return f"open: {records} so far (session still being recorded)"
        if self.status == TRUNCATED:
            return f"truncated: {records} intact; {self.problem}"
        if self.status == TAMPERED:
            return f"TAMPERED: {self.problem}"
        return f"unreadable: {self.problem}"


class _Stop(Exception):
    def __init__(self, status: str, problem: str, bad_record: int | None = None):
        self.status, self.problem, self.bad_record = status, problem, bad_record


@dataclass
class _Frame:
    seq: int
    kind: int
    start: int
    end: int
    chain: bytes  # chain value before this frame: what its associated data carries


def read_log_bytes(data: bytes, keyring: Keyring, *, name: str | None = None, decrypt_all: bool = True,
                   is_open: bool = False, path: Path | None = None) -> SessionLogRead:
    """Classify and decrypt one log. Never raises for what is in `data`."""
    result = SessionLogRead(path=path, session_id=name or "")
    try:
        _read(data, keyring, name, decrypt_all, result)
    except Stop as stop:
        result.status, result.problem, result.bad_record = stop.status, stop.problem, stop.bad_record
    if result.status == TRUNCATED and is_open:
        result.status, result.problem = OPEN, None
    elif result.status == TAMPERED and result.bad_record:
        result.count = result.bad_record - 1
    return result


def _version(data: bytes) -> int:
    """The format version the magic names. Raises Stop when it is not one this reader reads."""
    size = len(data)
    if size < len(MAGIC_PREFIX) + 1:
        if MAGIC_PREFIX.startswith(data):
            raise Stop(TRUNCATED, "the file ends inside its preamble (crash as the session began)")
        raise Stop(TAMPERED, "not a wireproxy session log (bad magic)", 0)
    if data[:len(MAGIC_PREFIX)] != MAGIC_PREFIX:
        raise Stop(TAMPERED, "not a wireproxy session log (bad magic)", 0)
    version = data[len(MAGIC_PREFIX)]
    if version not in READ_VERSIONS:
        reads = " and ".join(map(str, READ_VERSIONS))
        raise Stop(UNREADABLE, f"unsupported session log format version {version} (this wireproxy reads {reads})")
    return version


def _read(data: bytes, keyring: Keyring, name: str | None, decrypt_all: bool, result: SessionLogRead) -> None:
    version = _version(data)
    if len(data) < PREAMBLE.size:
        raise Stop(TRUNCATED, "the file ends inside its preamble (crash as the session began)")
    _, sid, kid, epk, wrapped = PREAMBLE.unpack_from(data)
    result.session_id, result.key_id = sid.hex(), kid.hex()
    if name is not None and name != sid.hex():
        raise Stop(TAMPERED, f"the file is named {name} but its preamble says session {sid.hex()}", 0)
    data_key, known = keyring.unwrap(kid, epk, wrapped, sid, version)
    if data_key is None:
        if known:
            raise Stop(TAMPERED, f"the session key does not unwrap with the private key of key id "
                                 f"{kid.hex()}: the preamble was altered", 0)
        held = ", ".join(keyring.key_ids()) or "none"
        raise Stop(UNREADABLE, f"written for key id {kid.hex()}, but the private key(s) given are "
                               f"key id {held}: wrong private key")
    frames, stop, after_end = walk(data, version)
    aead = AESGCM(data_key)
    last = len(frames) - 1
    wanted = range(len(frames)) if decrypt_all else sorted({0, last} if frames else set())
    index = 0
    try:
        for index in wanted:
            _take(result, frames[index], open_frame(aead, sid, data, frames[index], version,
                                                    torn_ok=(index == last and stop is None and after_end is None)))
    except Stop as bad:
        if bad.status == TRUNCATED:  # the last frame is torn: the records before it are intact
            result.count = max(frames[index].seq - 1, 0)
        elif not decrypt_all:
            # Find the first bad record, not just the first one we looked at.
            result.records, result.header, result.end = [], None, None
            for frame in frames:
                _take(result, frame, open_frame(aead, sid, data, frame, version, torn_ok=False))
        raise
    result.count = sum(frame.count for frame in frames if frame.kind == KIND_RECORD)
    if not decrypt_all:
        result.records = []
    if after_end is not None:
        raise after_end
    if stop is not None:
        raise stop
    if not frames or frames[-1].kind != KIND_END:
        raise Stop(TRUNCATED, "no final record (the proxy stopped before the session ended)")
    result.status = INTACT


def _take(result: SessionLogRead, frame: Frame, bodies: list[dict[str, Any]]) -> None:
    if frame.kind == KIND_HEADER:
        result.header = bodies[0]
    elif frame.kind == KIND_RECORD:
        result.records.extend(bodies)
    else:
        end = bodies[0]
        if end.get("records") != frame.seq - 1 or end.get("chain") != frame.chain.hex():
            raise Stop(TAMPERED, f"final record {frame.seq} does not match the records before it", frame.seq)
        result.end = end


# --- files -----------------------------------------------------------------------------------


def _is_locked(fd: int) -> bool:
    """Whether a writer holds the file's lock (the session is still being recorded)."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def read_session(path: str | os.PathLike, keyring: Keyring, *, decrypt_all: bool = True) -> SessionLogRead:
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            is_open = _is_locked(handle.fileno())
            data = handle.read()
    except OSError as exc:
        raise SessionLogError(f"{path}: cannot read: {exc.strerror or exc}") from None
    name = path.name[:-len(SUFFIX)] if path.name.endswith(SUFFIX) else None
    return read_log_bytes(data, keyring, name=name, decrypt_all=decrypt_all, is_open=is_open, path=path)


def log_files(log_dir: str | os.PathLike) -> list[Path]:
    """The session logs in a log dir, oldest first."""
    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        if log_dir.exists():
            raise SessionLogError(f"{log_dir}: not a directory")
        raise SessionLogError(f"{log_dir}: no such log directory")
    try:
        return sorted(p for p in log_dir.iterdir() if p.name.endswith(SUFFIX) and p.is_file())
    except OSError as exc:
        raise SessionLogError(f"{log_dir}: cannot list: {exc.strerror or exc}") from None


def find_session(log_dir: str | os.PathLike, ident: str) -> Path:
    """A session's file by its id, or by a unique prefix or suffix of it."""
    ident = ident.strip().lower()
    if ident.endswith(SUFFIX):
        ident = ident[:-len(SUFFIX)]
    if not ident:
        raise SessionLogError("empty session id")
    files = log_files(log_dir)
    stems = {p.name[:-len(SUFFIX)]: p for p in files}
    if ident in stems:
        return stems[ident]
    matches = [p for s, p in stems.items() if s.startswith(ident) or s.endswith(ident)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise SessionLogError(f"no session {ident} in {log_dir}")
    raise SessionLogError(f"{ident} matches {len(matches)} sessions in {log_dir}; give more of the id")


def list_sessions(log_dir: str | os.PathLike, keyring: Keyring, *, since: _dt.datetime | None = None,
                  user: str | None = None, decrypt_all: bool = False) -> list[SessionLogRead]:
    """Every session log in `log_dir` (started at or after `since`, of `user`), oldest first."""
    found = []
    for path in log_files(log_dir):
        stem = path.name[:-len(SUFFIX)]
        if since is not None and is_session_id(stem) and session_started(stem) < since:
            continue
        read = read_session(path, keyring, decrypt_all=decrypt_all)
        if since is not None and (read.started is None or read.started < since):
            continue
        if user is not None and (read.header or {}).get("user") != user:
            continue
        found.append(read)
    return found
