"""The write path: SessionLog, a writer service run as a trio task, and the SessionRecorder
(recorder.py) a relay holds for one session; the files themselves are files.py's.

    log = SessionLog(dir, key_file)             # loads key_file.pub; KeyFileError if unusable
    await nursery.start(log.run)                # writer service, in a nursery that outlives sessions
    rec = log.open_session({"user": ..., ...})  # LogUnavailable when fail-closed and broken
    if rec.failed: refuse the statement         # before each statement: cheap attribute reads
    rec.record({...})                           # after each statement: sync, O(1), never blocks
    rec.close({...})                            # sealed final record, flushed promptly

A record is one statement (or one HTTP exchange). Any JSON-serialisable dict goes; these keys
are the ones `sessions show` lays out (others are shown as `key: value`):
    sql, protocol ("simple" | "extended"), params (masked), decision (allow|audit|approve|block),
    rules [ids], approval {id, by, outcome} (or a list of them), duration_ms, rows, tag,
    error {code, message}, columns, result_rows [[...], ...] (masked; trimmed to the session's
    `max_result_bytes`, with result_rows_omitted = n), type (default "statement");
    HTTP: method, url, status.

Hot path cost: `record` appends a tuple to its session's queue. The writer wakes every
`flush_interval` (and at once on a session's end), takes everything queued, encodes it on the
trio thread session by session in slices of `_SLICE` records (one tight loop per slice, see
SessionEncoder.records) into one encrypted frame per session and flush, then writes and
fdatasyncs each touched file in one worker thread. Every cycle seals every frame it opened: what
a cycle took is on disk, authenticated, when it ends, and a clean close or shutdown loses
nothing; a kill -9 loses at most what was queued since the last flush. (Encryption stays on the
trio thread: one AES-GCM call per frame, so a worker thread would cost a hand-off and save
little.)

The queue is bounded softly: `record` never blocks and never drops what it is given; past
`max_pending` queued items `congested` is true and `await rec.wait_room()` (a no-op otherwise)
waits for the writer to catch up — the relay calls it at a statement boundary, so backpressure
falls on the client that outruns the disk, and nothing is lost.

Failure: when a log file cannot be created or written (disk full, permissions, the dir gone),
`log.failed` holds the reason. Fail-closed (the default): `open_session` raises LogUnavailable
and `rec.failed` is set for running sessions. A session whose own file failed stays failed
(its log ends there, and verifies as truncated); the log as a whole recovers when a probe write
in the dir succeeds again (tried every `retry_interval`). Fail-open: a loud error, and sessions
go on with `rec.failed` None, unrecorded where the log cannot be written.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path
from typing import Any

import trio

from .. import __version__
from .errors import KeyFileError, LogUnavailable
from .encoder import SessionEncoder
from .format import FORMAT_VERSION, SUFFIX, dumps, iso, key_id_of, new_session_id, session_started
from .keys import load_public_key, public_key_path
from .files import LogSession, close_fd, prepare_dir, strerror, write_batch
from .recorder import SessionRecorder
from .retention import apply_retention

logger = logging.getLogger("wireproxy.sessionlog")

_SLICE = 256                 # records encrypted between two checkpoints (about 1 ms)
_now = time.time

class SessionLog:
    key_check_interval = 1.0  # seconds between looks for a rotated public key

    def __init__(self, dir: str | os.PathLike, key_file: str | os.PathLike, *, flush_interval: float = 0.2,
                 fail_open: bool = False, max_result_bytes: int = 0, retention_max_age: float | None = None,
                 retention_max_bytes: int | None = None, retention_interval: float = 60.0,
                 retry_interval: float = 5.0, max_pending: int = 100_000):
        """`key_file`: the private key's path; the log reads only `<key_file>.pub`.
        `retention_max_age` in seconds. Raises KeyFileError when the public key is unusable."""
        self.dir = Path(dir)
        self.public_key_path = public_key_path(key_file)
        self.flush_interval = flush_interval
        self.fail_open = fail_open
        self.max_result_bytes = max(0, int(max_result_bytes))
        self.retention_max_age = retention_max_age
        self.retention_max_bytes = retention_max_bytes
        self.retention_interval = retention_interval
        self.retry_interval = retry_interval
        self.max_pending = max_pending
        self._public_key = load_public_key(self.public_key_path)
        self._key_id = key_id_of(self._public_key)
        self._key_stat = self._stat_key()
        self.failed: str | None = None
        self._active: dict[LogSession, None] = {}   # sessions with something queued, in order
        self._open: dict[str, LogSession] = {}
        self._enqueued = 0                        # items queued (headers, records, ends), ever
        self._taken = 0                           # of which a cycle has taken
        self._processed = 0                       # of which written (or failed)
        self._flushes = 0
        self._bytes_written = 0
        self._wake = trio.Event()
        self._cycle_done = trio.Event()
        self._running = False
        self._stopped = False
        self._next_key_check = 0.0
        self._next_probe = 0.0
        self._next_retention = 0.0

    # --- what the relay uses -------------------------------------------------------------

    @property
    def key_id(self) -> str:
        return self._key_id.hex()

    @property
    def open_sessions(self) -> int:
        return len(self._open)

    @property
    def pending(self) -> int:
        return self._enqueued - self._taken

    @property
    def congested(self) -> bool:
        return self._enqueued - self._taken >= self.max_pending

    @property
    def stats(self) -> dict[str, Any]:
        """Counters for /metrics and health."""
        return {"open_sessions": len(self._open), "pending": self.pending, "queued": self._enqueued,
                "written": self._processed, "flushes": self._flushes, "bytes_written": self._bytes_written,
                "failed": self.failed, "key_id": self.key_id}

    def open_session(self, header: dict[str, Any]) -> SessionRecorder:
        """Start recording a session. `header`: client_addr, user, database, application_name,
        upstream, ... (JSON-serialisable; all of it is encrypted). The log adds session,
        started, proxy_version, key_id. Raises LogUnavailable when fail-closed and the log
        cannot be written."""
        if not self.fail_open:
            if self.failed is not None:
                raise LogUnavailable(f"session log unavailable: {self.failed}")
            if self._stopped:
                raise LogUnavailable("session log unavailable: the log writer has stopped")
        sid = new_session_id()
        session = LogSession(sid, self.dir / f"{sid.hex()}{SUFFIX}", self.max_result_bytes)
        if self._stopped:
            session.failed = "the log writer has stopped"
        else:
            self._open[session.id] = session
            session.header = dict(header)
            self._active[session] = None
            self._enqueued += 1
        return SessionRecorder(self, session)

    def _queue_end(self, session: LogSession, summary: Any) -> None:
        session.end = (summary, _now())
        self._active[session] = None
        self._enqueued += 1
        self._wake.set()

    async def wait_room(self) -> None:
        while self._enqueued - self._taken >= self.max_pending and self._running:
            self._wake.set()
            await self._cycle_done.wait()

    async def flush(self) -> None:
        """Wait until everything queued so far is written and synced (or failed)."""
        target = self._enqueued
        while self._processed < target and self._running:
            self._wake.set()
            await self._cycle_done.wait()

    # --- the writer service --------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer service. Run it with `await nursery.start(log.run)` in a nursery that
        outlives the sessions; when cancelled it writes what is queued and seals sessions still
        open with reason "shutdown"."""
        if self._running or self._stopped:
            raise RuntimeError("SessionLog.run() runs once")
        self._running = True
        try:
            problem = await trio.to_thread.run_sync(prepare_dir, self.dir)
            if problem:
                self._fail(problem)
            await self._housekeeping(force=True)
            task_status.started()
            interval = self.flush_interval
            while True:
                deadline = trio.current_time() + interval
                with trio.move_on_at(deadline):
                    await self._wake.wait()
                self._wake = trio.Event()
                await self._cycle()
                await self._housekeeping()
        finally:
            with trio.move_on_after(30) as scope:
                scope.shield = True
                for session in list(self._open.values()):
                    if not session.closing:
                        session.closing = True
                        self._queue_end(session, {"reason": "shutdown"})
                await self._cycle()
            for session in list(self._open.values()):
                close_fd(session)
            self._open.clear()
            self._running = False
            self._stopped = True
            self._signal_cycle()

    def _signal_cycle(self) -> None:
        done, self._cycle_done = self._cycle_done, trio.Event()
        done.set()

    async def _cycle(self) -> None:
        """Encrypt, write and sync everything queued. Shielded: a batch once taken is written."""
        with trio.CancelScope(shield=True):
            active, self._active = self._active, {}
            if not active:
                self._signal_cycle()
                return
            # Take everything at once, before the first checkpoint: what is queued from here on
            # goes to fresh queues and into the next cycle, and `taken` stays exact.
            work = []
            for session in active:
                work.append((session, session.header, session.queue, session.end))
                session.header, session.queue, session.end = None, [], None
            taken = self._enqueued - self._taken
            self._taken = self._enqueued
            out: dict[LogSession, list[bytes]] = {}
            ending: list[LogSession] = []
            done = 0
            for session, header, items, end in work:
                if end is not None:
                    ending.append(session)
                if session.failed is not None:
                    session.dropped += len(items)
                    continue
                chunks: list[bytes] = []
                if header is not None:
                    self._encode_header(session, header, chunks)
                    await trio.lowlevel.checkpoint()  # a key agreement per session: not cheap
                if items:
                    if session.encoder is None:  # its header could not be written
                        session.dropped += len(items)
                    else:
                        done = await self._encode_records(session, items, chunks, done)
                if end is not None and session.encoder is not None:
                    self._encode_end(session, end, chunks)
                if chunks:
                    out[session] = chunks
            errors = await trio.to_thread.run_sync(write_batch, out, self.dir) if out else {}
            for session, exc in errors.items():
                self._session_failed(session, exc)
            for session in ending:
                close_fd(session)
                session.encoder = None  # the data key leaves memory with the session
                self._open.pop(session.id, None)
            self._processed += taken
            self._flushes += 1
            self._bytes_written += sum(sum(map(len, chunks)) for s, chunks in out.items() if s not in errors)
            self._signal_cycle()

    def _encode_header(self, session: LogSession, payload: dict[str, Any], chunks: list[bytes]) -> None:
        try:
            session.encoder = SessionEncoder(session.sid, self._public_key, self._key_id)
            header = dict(payload)
            header.setdefault("proxy_version", __version__)
            header.update(session=session.id, started=iso(session_started(session.sid)),
                          key_id=self._key_id.hex(), format=FORMAT_VERSION)
            chunks.append(session.encoder.start(header))
        except Exception:  # a bug in us, not the disk: keep the log going
            logger.exception("session log: cannot start the log of session %s", session.id)
            session.encoder = None

    async def _encode_records(self, session: LogSession, items: list[tuple[dict[str, Any], float]],
                              chunks: list[bytes], done: int) -> int:
        """`items` as one frame (more past FRAME_BUDGET) onto `chunks`, a checkpoint every `_SLICE`
        records of the cycle. -> the cycle's running count of records encoded."""
        encoder = session.encoder
        if encoder is None:
            raise RuntimeError(f"session {session.id}: no encoder")
        cap = functools.partial(self._cap_results, session)
        pos, total = 0, len(items)
        while pos < total:
            stop = min(total, pos + _SLICE - done % _SLICE)
            before = encoder.seq
            try:
                encoder.records(items, chunks, pos, stop, results=cap)
            except Exception:  # a bug in us, not the disk: skip that record, keep the log going
                failed = pos + encoder.seq - before
                logger.exception("session log: cannot encode record %d of session %s", encoder.seq, session.id)
                stop = failed + 1
            done += stop - pos
            pos = stop
            if done % _SLICE == 0:
                await trio.lowlevel.checkpoint()
        sealed = encoder.seal()  # every cycle seals what it opened: taken means written
        if sealed:
            chunks.append(sealed)
        return done

    def _encode_end(self, session: LogSession, end: tuple[Any, float], chunks: list[bytes]) -> None:
        encoder = session.encoder
        if encoder is None:
            raise RuntimeError(f"session {session.id}: no encoder")
        payload, ts = end
        fields: dict[str, Any] = {"reason": "closed"}
        if isinstance(payload, dict):
            fields.update({k: v for k, v in payload.items() if k == "reason"})
            summary = {k: v for k, v in payload.items() if k != "reason"}
            if summary:
                fields["summary"] = summary
        if self.max_result_bytes:
            fields["result_bytes"] = session.result_used
            fields["results_truncated"] = session.results_truncated
        try:
            chunks.append(encoder.end(fields, ts))
        except Exception:  # a bug in us, not the disk: the log then reads as truncated
            logger.exception("session log: cannot seal the log of session %s", session.id)

    def _cap_results(self, session: LogSession, entry: dict[str, Any]) -> dict[str, Any]:
        entry = dict(entry)
        rows = entry["result_rows"]
        if not isinstance(rows, list):
            rows = [rows]
        kept: list[Any] = []
        budget = session.result_budget
        for row in rows:
            size = len(dumps(row)) + 1
            if size > budget:
                break
            kept.append(row)
            budget -= size
            session.result_used += size
        session.result_budget = budget if len(kept) == len(rows) else 0
        if len(kept) < len(rows):
            session.results_truncated = True
            entry["result_rows_omitted"] = entry.get("result_rows_omitted", 0) + len(rows) - len(kept)
        if kept:
            entry["result_rows"] = kept
        else:
            del entry["result_rows"]
        return entry

    # --- failure ---------------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        if self.failed is None:
            mode = ("FAIL-OPEN: sessions go on UNRECORDED where the log cannot be written"
                    if self.fail_open else "fail-closed: new sessions are refused, running ones stopped")
            logger.critical("session log cannot be written: %s (%s)", reason, mode)
        self.failed = reason
        self._next_probe = trio.current_time() + self.retry_interval

    def _session_failed(self, session: LogSession, exc: OSError) -> None:
        reason = f"cannot write {session.path}: {strerror(exc)}"
        session.failed = reason
        close_fd(session)
        self._fail(reason)
        if self.fail_open:
            logger.error("session %s is NOT being recorded from here on (fail_open): %s", session.id, reason)

    async def _housekeeping(self, force: bool = False) -> None:
        now = trio.current_time()
        if force or now >= self._next_key_check:
            self._next_key_check = now + self.key_check_interval
            self._reload_key()
        if self.failed is not None and (force or now >= self._next_probe):
            self._next_probe = now + self.retry_interval
            problem = await trio.to_thread.run_sync(prepare_dir, self.dir)
            if problem is None and self.failed is not None:
                logger.warning("session log is writable again (%s); it failed with: %s", self.dir, self.failed)
                self.failed = None
        if (self.retention_max_age is not None or self.retention_max_bytes is not None) and (
                force or now >= self._next_retention):
            self._next_retention = now + self.retention_interval
            keep = [s.path for s in self._open.values()]
            await trio.to_thread.run_sync(lambda: apply_retention(
                self.dir, max_age=self.retention_max_age, max_bytes=self.retention_max_bytes, keep=keep))

    def _stat_key(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.public_key_path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _reload_key(self) -> None:
        """Pick up a rotated public key: new sessions use it, without a restart."""
        stat = self._stat_key()
        if stat == self._key_stat or stat is None:
            return
        self._key_stat = stat
        try:
            key = load_public_key(self.public_key_path)
        except KeyFileError as exc:
            logger.error("session log keeps key id %s: %s", self._key_id.hex(), exc)
            return
        new_id = key_id_of(key)
        if new_id != self._key_id:
            logger.warning("session log now writes for key id %s (was %s)", new_id.hex(), self._key_id.hex())
            self._public_key, self._key_id = key, new_id


# --- file work, in worker threads ------------------------------------------------------------
