"""`wireproxy sessions ...`: reading, verifying and exporting session logs (`keys ...` is keys.py).

    wireproxy sessions list [--user U] [--since T] [--json]
    wireproxy sessions show ID [--json]
    wireproxy sessions verify [ID] [--json]      exit 0 intact, 1 tampered, 3 truncated, 2 unusable
    wireproxy sessions export [--since T] [--user U] --format jsonl
    wireproxy keys init | rotate | list

Every command takes --log-dir and --key-file, or both from --config FILE (its [log] dir and
key_file, relative to the config file); flags win over the file. A user's mistake prints one
line and exits 2.

`cli.py` calls `add_parsers(subparsers)` and then `args.func(args)`; `main(argv)` does the same
on its own.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
import sys
from pathlib import Path
from typing import Any, TextIO

from ..sessionlog import (INTACT, OPEN, TAMPERED, TRUNCATED, UNREADABLE, Keyring, SessionLogError,
                         SessionLogRead, find_session, list_sessions, log_files, read_session, worst_exit_code)
from . import keys
from .paths import DEFAULT_LOG_DIR, KEY_FILE_NAME, command as _command, resolve_paths
from .text import inert
from .transcript import parse_ts as _parse_ts, started_at, write_transcript



# --- parsers ---------------------------------------------------------------------------------


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register `sessions` (and `keys`) on the top-level subparsers; each leaf sets `func`."""
    paths = argparse.ArgumentParser(add_help=False)
    paths.add_argument("--config", metavar="FILE", help="wireproxy.toml: take [log] dir and key_file from it")
    paths.add_argument("--log-dir", metavar="DIR",
                       help=f"session log directory, as given to serve (default [log] dir, else ./{DEFAULT_LOG_DIR})")
    paths.add_argument("--key-file", metavar="FILE",
                       help=f"private key that reads the logs (default [log] key_file, else {KEY_FILE_NAME} "
                            f"beside the log directory, where serve creates it)")
    since_help = "2025-11-25, 2025-11-25T10:00 (UTC unless it has an offset), or an age: 30m, 2h, 7d"

    sessions = subparsers.add_parser("sessions", help="list, show, verify and export recorded sessions",
                                     description="Read the encrypted session logs (needs the private key).")
    sub = sessions.add_subparsers(dest="sessions_command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", parents=[paths], help="one line per session")
    p.add_argument("--user", help="only this database user's sessions")
    p.add_argument("--since", metavar="T", help="only sessions started at or after T: " + since_help)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run_sessions_list)

    p = sub.add_parser("show", parents=[paths], help="a session's transcript")
    p.add_argument("id", metavar="ID", help="session id (or a unique prefix or suffix of it)")
    p.add_argument("--json", action="store_true", help="the whole session as one JSON object")
    p.set_defaults(func=run_sessions_show)

    p = sub.add_parser("verify", parents=[paths], help="check logs are intact (exit 0), tampered (1), truncated (3)")
    p.add_argument("id", metavar="ID", nargs="?", help="one session (default: every session in the log dir)")
    p.add_argument("--json", action="store_true", help="one JSON object per session")
    p.set_defaults(func=run_sessions_verify)

    p = sub.add_parser("export", parents=[paths], help="every record as JSON lines, for a SIEM")
    p.add_argument("--since", metavar="T", help="only events at or after T: " + since_help)
    p.add_argument("--user", help="only this database user's sessions")
    p.add_argument("--format", choices=["jsonl"], default="jsonl", help="output format (jsonl)")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of standard output")
    p.set_defaults(func=run_sessions_export)

    keys.add_parsers(subparsers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wireproxy")
    add_parsers(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


# --- shared -------------------------------------------------------------------------------


_RELATIVE = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str | None, now: _dt.datetime | None = None) -> _dt.datetime | None:
    if text is None:
        return None
    now = now or _dt.datetime.now(_dt.timezone.utc)
    match = _RELATIVE.match(text)
    if match:
        return now - _dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2).lower()])
    try:
        when = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise SessionLogError(f"--since {text!r}: expected a date or time like 2025-11-25 or "
                              f"2025-11-25T10:00Z, or an age like 30m, 2h, 7d") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return when


def _keyring(key_file: Path) -> Keyring:
    return Keyring.load(key_file)


def _state(read: SessionLogRead) -> str:
    return {INTACT: "ended", OPEN: "open", TRUNCATED: "truncated", TAMPERED: "TAMPERED",
            UNREADABLE: "no key"}[read.status]


# --- sessions list -----------------------------------------------------------------------------


@_command
def run_sessions_list(args: argparse.Namespace, out: TextIO) -> int:
    log_dir, key_file = resolve_paths(args)
    since = parse_since(args.since)
    keyring = _keyring(key_file)
    reads = list_sessions(log_dir, keyring, since=since, user=args.user)
    unreadable = [r for r in reads if r.status == UNREADABLE]
    for read in unreadable:
        print(f"wireproxy: session {read.session_id}: {read.problem}", file=sys.stderr)
    if args.json:
        for read in reads:
            out.write(json.dumps(_list_item(read), ensure_ascii=False) + "\n")
    else:
        rows = [("ID", "STARTED", "USER", "DATABASE", "CLIENT", "STATEMENTS", "STATE")]
        for read in reads:
            h = read.header or {}
            rows.append(tuple(inert(v) for v in (
                read.session_id, started_at(read).replace("T", " "), h.get("user", "?"),
                h.get("database", "?"), h.get("client_addr", ""), read.count, _state(read))))
        if len(rows) > 1:
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            for row in rows:
                out.write(inert("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()) + "\n")
        else:
            print(f"no sessions in {log_dir}{_filters(args, since)}", file=sys.stderr)
    if unreadable and len(unreadable) == len(reads):
        return 2
    return 0


def _filters(args: argparse.Namespace, since: _dt.datetime | None) -> str:
    """' matching --user bob --since 2h (started at or after 2025-11-25 08:00:00Z)', or ''."""
    shown = []
    if args.user is not None:
        shown.append(f"--user {args.user}")
    if since is not None:
        shown.append(f"--since {args.since} (started at or after "
                     f"{since.astimezone(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M:%S')}Z)")
    return " matching " + " ".join(shown) if shown else ""


def _list_item(read: SessionLogRead) -> dict[str, Any]:
    h = read.header or {}
    item = {"id": read.session_id, "user": h.get("user"), "database": h.get("database"),
            "started": started_at(read), "statements": read.count, "status": read.status,
            "ended": (read.end or {}).get("ts"), "client_addr": h.get("client_addr"),
            "application_name": h.get("application_name"), "upstream": h.get("upstream"),
            "key_id": read.key_id, "auth": h.get("auth")}      # scram | jwt | failed; None: passthrough
    if read.problem:
        item["problem"] = read.problem
    return item


# --- sessions show ---------------------------------------------------------------------------------


@_command
def run_sessions_show(args: argparse.Namespace, out: TextIO) -> int:
    log_dir, key_file = resolve_paths(args)
    keyring = _keyring(key_file)
    path = find_session(log_dir, args.id)
    read = read_session(path, keyring)
    if read.status == UNREADABLE:
        raise SessionLogError(f"session {read.session_id}: {read.problem}")
    if args.json:
        doc = {"id": read.session_id, "status": read.status, "problem": read.problem,
               "bad_record": read.bad_record, "header": read.header, "records": read.records, "end": read.end}
        out.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    else:
        write_transcript(read, out)
    if read.status in (TAMPERED, TRUNCATED):
        print(f"wireproxy: session {read.session_id}: {read.describe()}", file=sys.stderr)
    return read.exit_code


# --- sessions verify ---------------------------------------------------------------------------


@_command
def run_sessions_verify(args: argparse.Namespace, out: TextIO) -> int:
    log_dir, key_file = resolve_paths(args)
    keyring = _keyring(key_file)
    if args.id:
        reads = [read_session(find_session(log_dir, args.id), keyring)]
    else:
        reads = list_sessions(log_dir, keyring, decrypt_all=True)
        if not reads:
            print(f"no session logs in {log_dir}", file=sys.stderr)
    for read in reads:
        if args.json:
            out.write(json.dumps({"id": read.session_id, "status": read.status, "records": read.count,
                                  "bad_record": read.bad_record, "problem": read.problem,
                                  "exit_code": read.exit_code}) + "\n")
        else:
            out.write(inert(f"{read.session_id}  {read.describe()}") + "\n")
    if len(reads) > 1 and not args.json:
        counts: dict[str, int] = {}
        for read in reads:
            counts[read.status] = counts.get(read.status, 0) + 1
        out.write(f"{len(reads)} sessions: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + "\n")
    return worst_exit_code([r.status for r in reads])


# --- sessions export --------------------------------------------------------------------------


_SESSION_FIELDS = ("user", "database", "client_addr", "application_name", "upstream")


@_command
def run_sessions_export(args: argparse.Namespace, out: TextIO) -> int:
    log_dir, key_file = resolve_paths(args)
    since = parse_since(args.since)
    keyring = _keyring(key_file)
    reads = []
    for path in _files_touched_since(log_dir, since):
        read = read_session(path, keyring)
        if args.user is not None and (read.header or {}).get("user") != args.user:
            continue
        reads.append(read)
    target = open(args.output, "w", encoding="utf-8") if args.output else out
    try:
        for read in reads:
            if read.status == UNREADABLE:
                print(f"wireproxy: session {read.session_id}: {read.problem}", file=sys.stderr)
                continue
            if read.status in (TAMPERED, TRUNCATED):
                print(f"wireproxy: session {read.session_id}: {read.describe()}", file=sys.stderr)
            for event in export_events(read, since):
                target.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
    finally:
        if target is not out:
            target.close()
    statuses = [r.status for r in reads if r.status in (TAMPERED, UNREADABLE)]
    return worst_exit_code(statuses)


def _files_touched_since(log_dir: Path, since: _dt.datetime | None) -> list[Path]:
    files = log_files(log_dir)
    if since is None:
        return files
    cutoff = since.timestamp()
    return [p for p in files if p.stat().st_mtime >= cutoff - 1]


def export_events(read: SessionLogRead, since: _dt.datetime | None = None) -> list[dict[str, Any]]:
    """A session as flat events: session_start, one per record, session_end, each with the
    session's id, user, database and client. Every record exported is one the hash chain proves
    as written; a log that is not intact adds ONE `integrity` event for the session (what is
    wrong, the first bad record), whatever --since says, rather than a flag on every line."""
    h = read.header or {}
    base: dict[str, Any] = {"session_id": read.session_id}
    base.update({k: h.get(k) for k in _SESSION_FIELDS})

    def after(ts: Any) -> bool:
        when = _parse_ts(ts)
        return since is None or (when is not None and when >= since)

    def event(kind: str, body: dict[str, Any]) -> dict[str, Any]:
        line = dict(base)
        line["event"] = kind
        for key, value in body.items():
            line[key if key not in line else f"record_{key}"] = value
        return line

    events = []
    if read.header is not None and after(h.get("started")):
        body = {k: v for k, v in h.items() if k not in _SESSION_FIELDS and k not in ("session", "seq")}
        body["ts"] = h.get("started")
        events.append(event("session_start", body))
    for rec in read.records:
        if after(rec.get("ts")):
            events.append(event(str(rec.get("type") or "statement"), rec))
    if read.end is not None and after(read.end.get("ts")):
        end = {k: v for k, v in read.end.items() if k != "chain"}
        end["integrity"] = read.status
        events.append(event("session_end", end))
    if read.status in (TAMPERED, TRUNCATED):
        events.append(event("integrity", {"integrity": read.status, "problem": read.problem,
                                          "bad_record": read.bad_record, "records_intact": read.count}))
    return events


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
