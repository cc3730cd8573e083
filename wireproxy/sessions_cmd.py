"""`wireproxy sessions ...` and `wireproxy keys ...`: reading, verifying and exporting session
logs, and managing their keys.

    wireproxy sessions list [--user U] [--since T] [--json]
    wireproxy sessions show ID [--json]
    wireproxy sessions verify [ID] [--json]      exit 0 intact, 1 tampered, 3 truncated, 2 unusable
    wireproxy sessions export [--since T] [--user U] --format jsonl
    wireproxy keys init | rotate | list

Every command takes --log-dir and --key-file, or both from --config FILE (its [log] dir and
key_file, relative to the config file); flags win over the file. A user's mistake prints one
line and exits 2.

`cli.py` calls `add_parsers(subparsers)` and then `args.func(args)`; `main(argv)` does the same
on its own (`python -m wireproxy.sessions_cmd ...`).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, TextIO

from .sessionlog import (INTACT, OPEN, TAMPERED, TRUNCATED, UNREADABLE, Keyring, SessionLogError,
                         SessionLogRead, archive_dir, find_session, init_keys, list_sessions, load_private_key,
                         load_public_key, log_files, public_key_path, read_session, rotate_keys, worst_exit_code)
from .sessionlog.keys import key_id
from .tomlfile import ConfigError, TomlFile

DEFAULT_LOG_DIR = "wireproxy-sessions"
DEFAULT_KEY_FILE = "wireproxy.key"


# --- parsers ---------------------------------------------------------------------------------


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register `sessions` and `keys` on the top-level subparsers; each leaf sets `func`."""
    paths = argparse.ArgumentParser(add_help=False)
    paths.add_argument("--config", metavar="FILE", help="wireproxy.toml: take [log] dir and key_file from it")
    paths.add_argument("--log-dir", metavar="DIR", help=f"session log directory (default {DEFAULT_LOG_DIR})")
    paths.add_argument("--key-file", metavar="FILE",
                       help=f"private key that reads the logs (default {DEFAULT_KEY_FILE})")
    since_help = "only from this time on: 2025-11-25, 2025-11-25T10:00 (UTC unless it has an offset), or 30m, 2h, 7d ago"

    sessions = subparsers.add_parser("sessions", help="list, show, verify and export recorded sessions",
                                     description="Read the encrypted session logs (needs the private key).")
    sub = sessions.add_subparsers(dest="sessions_command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", parents=[paths], help="one line per session")
    p.add_argument("--user", help="only this database user's sessions")
    p.add_argument("--since", metavar="T", help=since_help)
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

    keys_paths = argparse.ArgumentParser(add_help=False)
    keys_paths.add_argument("--config", metavar="FILE", help="wireproxy.toml: take [log] key_file from it")
    keys_paths.add_argument("--key-file", metavar="FILE", help=f"private key path (default {DEFAULT_KEY_FILE})")
    keys = subparsers.add_parser("keys", help="create and rotate the session log key pair",
                                 description="The proxy writes logs with FILE.pub; reading needs FILE.")
    sub = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    p = sub.add_parser("init", parents=[keys_paths], help="create the key pair (private key mode 0600)")
    p.set_defaults(func=run_keys_init)
    p = sub.add_parser("rotate", parents=[keys_paths],
                       help="new key pair; the old private key is kept in FILE.old/ for older logs")
    p.set_defaults(func=run_keys_rotate)
    p = sub.add_parser("list", parents=[keys_paths], help="current and retired key ids")
    p.set_defaults(func=run_keys_list)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wireproxy")
    add_parsers(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


# --- shared -------------------------------------------------------------------------------


def _command(func: Callable[[argparse.Namespace, TextIO], int]) -> Callable[[argparse.Namespace], int]:
    """User mistakes -> one line on stderr, exit 2."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args, sys.stdout)
        except (SessionLogError, ConfigError) as exc:
            print(f"wireproxy: {exc}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # `... | head`
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0

    return run


def resolve_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """(log dir, key file) from the flags, else the config's [log], else the defaults."""
    log_dir = key_file = None
    if getattr(args, "config", None):
        log_dir, key_file = _from_config(Path(args.config))
    if getattr(args, "log_dir", None):
        log_dir = Path(args.log_dir)
    if getattr(args, "key_file", None):
        key_file = Path(args.key_file)
    return log_dir or Path(DEFAULT_LOG_DIR), key_file or Path(DEFAULT_KEY_FILE)


def _from_config(path: Path) -> tuple[Path | None, Path | None]:
    config = TomlFile.load(path)
    table = config.data.get("log", {})
    if not isinstance(table, dict):
        raise ConfigError(path, config.line_of("log"), "log must be a table ([log])")
    found: list[Path | None] = []
    for key in ("dir", "key_file"):
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(path, config.line_of("log", key), f"log.{key} must be a string")
        found.append(path.parent / value if value else None)
    return found[0], found[1]


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


def _parse_ts(value: Any) -> _dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = _dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)


def _keyring(key_file: Path) -> Keyring:
    return Keyring.load(key_file)


def _started(read: SessionLogRead) -> str:
    started = (read.header or {}).get("started")
    if started:
        return started
    return read.started.isoformat(timespec="milliseconds").replace("+00:00", "Z") if read.started else ""


def _short_time(ts: Any) -> str:
    when = _parse_ts(ts)
    return when.strftime("%H:%M:%S.%f")[:-3] if when else "--:--:--.---"


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
            rows.append((read.session_id, _started(read).replace("T", " "), str(h.get("user", "?")),
                         str(h.get("database", "?")), str(h.get("client_addr", "")), str(read.count),
                         _state(read)))
        if len(rows) > 1:
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            for row in rows:
                out.write("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")
        else:
            print(f"no sessions in {log_dir}" + (" matching" if since or args.user else ""), file=sys.stderr)
    if unreadable and len(unreadable) == len(reads):
        return 2
    return 0


def _list_item(read: SessionLogRead) -> dict[str, Any]:
    h = read.header or {}
    item = {"id": read.session_id, "user": h.get("user"), "database": h.get("database"),
            "started": _started(read), "statements": read.count, "status": read.status,
            "ended": (read.end or {}).get("ts"), "client_addr": h.get("client_addr"),
            "application_name": h.get("application_name"), "upstream": h.get("upstream"),
            "key_id": read.key_id}
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


def write_transcript(read: SessionLogRead, out: TextIO) -> None:
    h = dict(read.header or {})
    out.write(f"session {read.session_id}\n")
    facts = [("user", h.pop("user", None)), ("database", h.pop("database", None)),
             ("client", h.pop("client_addr", None)), ("application", h.pop("application_name", None)),
             ("upstream", h.pop("upstream", None))]
    out.write("  " + "  ".join(f"{k} {v}" for k, v in facts if v not in (None, "")) + "\n")
    started = h.pop("started", None) or _started(read)
    version, kid = h.pop("proxy_version", None), h.pop("key_id", None)
    out.write(f"  started {started}  proxy {version}  key {kid}\n")
    for key in ("session", "seq", "format"):
        h.pop(key, None)
    for key, value in h.items():
        out.write(f"  {key}: {_compact(value)}\n")
    day = (started or "")[:10]
    for rec in read.records:
        ts = rec.get("ts") or ""
        if ts[:10] and ts[:10] != day:
            day = ts[:10]
            out.write(f"-- {day}\n")
        for line in describe_record(rec):
            out.write(line + "\n")
    if read.end is not None:
        end = read.end
        line = f"{_short_time(end.get('ts'))}  end ({end.get('reason', 'closed')}): {end.get('records')} records"
        if end.get("results_truncated"):
            line += ", result rows cut at the byte cap"
        out.write(line + "\n")
        if end.get("summary"):
            out.write(f"{'':14}summary: {_compact(end['summary'])}\n")
    out.write(f"log {read.describe()}\n")


_SHOWN = {"seq", "ts", "type", "sql", "statement", "protocol", "params", "decision", "rules", "rule",
          "approval", "duration_ms", "rows", "tag", "error", "result_rows", "result_rows_omitted", "columns",
          "method", "url", "status"}


def describe_record(rec: dict[str, Any]) -> list[str]:
    """A record as transcript lines: time, number, decision, protocol path, statement; then what
    happened. Keys it does not know are shown as `key: value`."""
    pad = " " * 14
    decision = rec.get("decision")
    rules = rec.get("rules") if rec.get("rules") is not None else rec.get("rule")
    if isinstance(rules, str):
        rules = [rules]
    verdict = str(decision or rec.get("type") or "")
    if rules:
        verdict += " " + ",".join(map(str, rules))
    text = rec.get("sql") or rec.get("statement")
    if text is None and rec.get("method"):
        text = f"{rec.get('method')} {rec.get('url', '')}"
    head = f"{_short_time(rec.get('ts'))}  #{rec.get('seq')}"
    if verdict:
        head += f"  [{verdict}]"
    if rec.get("protocol"):
        head += f"  {rec['protocol']}"
    statement_lines = str(text if text is not None else "").splitlines() or [""]
    lines = [f"{head}  {statement_lines[0]}"]
    lines += [f"{pad}{line}" for line in statement_lines[1:]]
    if rec.get("params") not in (None, []):
        lines.append(f"{pad}params: {_compact(rec['params'])}")
    approvals = rec.get("approval")
    for approval in approvals if isinstance(approvals, list) else [approvals] if approvals else []:
        if isinstance(approval, dict):
            who = approval.get("by") or approval.get("approver") or "?"
            outcome = approval.get("outcome") or approval.get("decision") or "?"
            ident = f" {approval['id']}" if approval.get("id") else ""
            lines.append(f"{pad}approval{ident} {outcome} by {who}")
        else:
            lines.append(f"{pad}approval: {_compact(approval)}")
    outcome = []
    if rec.get("tag"):
        outcome.append(str(rec["tag"]))
    if rec.get("status") is not None:
        outcome.append(f"HTTP {rec['status']}")
    if rec.get("rows") is not None:
        outcome.append(f"{rec['rows']} row" + ("" if rec["rows"] == 1 else "s"))
    if isinstance(rec.get("duration_ms"), (int, float)):
        outcome.append(f"{rec['duration_ms']:.2f} ms")
    if outcome:
        lines.append(f"{pad}-> " + " · ".join(outcome))
    error = rec.get("error")
    if error:
        if isinstance(error, dict):
            lines.append(f"{pad}error {error.get('code', '')}: {error.get('message', _compact(error))}")
        else:
            lines.append(f"{pad}error: {error}")
    if "result_rows" in rec or "result_rows_omitted" in rec:
        rows = rec.get("result_rows") or []
        note = f" (+{rec['result_rows_omitted']} not recorded: byte cap)" if rec.get("result_rows_omitted") else ""
        if rec.get("columns"):
            lines.append(f"{pad}columns: {_compact(rec['columns'])}")
        for row in rows:
            lines.append(f"{pad}| {_compact(row)}")
        if note:
            lines.append(f"{pad}|{note}")
    for key, value in rec.items():
        if key not in _SHOWN:
            lines.append(f"{pad}{key}: {_compact(value)}")
    return lines


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


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
            out.write(f"{read.session_id}  {read.describe()}\n")
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
    """A session as flat events: session_start, one per record, session_end. Each carries the
    session's id, user, database, client and the log's integrity status."""
    h = read.header or {}
    base: dict[str, Any] = {"session_id": read.session_id}
    base.update({k: h.get(k) for k in _SESSION_FIELDS})
    base["integrity"] = read.status

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
        events.append(event("session_end", {k: v for k, v in read.end.items() if k != "chain"}))
    return events


# --- keys --------------------------------------------------------------------------------------------


def _key_file(args: argparse.Namespace) -> Path:
    return resolve_paths(args)[1]


@_command
def run_keys_init(args: argparse.Namespace, out: TextIO) -> int:
    pair = init_keys(_key_file(args))
    out.write(f"key id {pair.key_id}\n"
              f"  public key  {pair.public_path}  (the proxy needs only this one to write logs)\n"
              f"  private key {pair.private_path}  (mode 0600; reading logs needs it: keep it off the proxy host)\n")
    return 0


@_command
def run_keys_rotate(args: argparse.Namespace, out: TextIO) -> int:
    rotation = rotate_keys(_key_file(args))
    out.write(f"new key id {rotation.key_id}; previous key {rotation.previous_key_id} kept at {rotation.archived} "
              f"(older logs need it)\n"
              f"copy {rotation.public_path} to the proxy host: a running proxy picks it up for new sessions\n")
    return 0


@_command
def run_keys_list(args: argparse.Namespace, out: TextIO) -> int:
    key_file = _key_file(args)
    pub = public_key_path(key_file)
    shown = False
    if key_file.exists():
        out.write(f"{key_id(load_private_key(key_file).public_key())}  current   {key_file} (private)\n")
        shown = True
    if pub.exists():
        out.write(f"{key_id(load_public_key(pub))}  current   {pub} (public)\n")
        shown = True
    archive = archive_dir(key_file)
    if archive.is_dir():
        for path in sorted(archive.glob("*.key")):
            out.write(f"{key_id(load_private_key(path).public_key())}  retired   {path}\n")
            shown = True
    if not shown:
        raise SessionLogError(f"{key_file}: no keys here; create them with `wireproxy keys init`")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
