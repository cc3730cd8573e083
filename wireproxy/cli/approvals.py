"""`wireproxy approvals ...`: see and decide held statements, through the admin API.

    wireproxy approvals list [--all] [--json]
    wireproxy approvals show ID [--json]
    wireproxy approvals approve ID [--window 15m] [--reason R] [--as NAME]
    wireproxy approvals deny ID [--reason R] [--as NAME]

Where the API listens and where its token is come from --config (its [admin] listen and
token_file, the token defaulting to beside the config file), or --admin and --token-file, or
--log-dir (serve without a config puts the token beside the log key: config.locations). The
approver is --as, else $WIREPROXY_APPROVER, else the login name. Exit status: 0 done, 1 the API
refused (unknown id, already decided, not allowed, bad window), 2 a usage, config, token or
connection problem. Statements are shown with control characters escaped: a statement is
somebody else's text and must not drive the approver's terminal.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TextIO

from ..approvals.model import format_duration
from ..config import Config, load_config
from ..config.locations import with_flags
from ..admin.token import read_token
from .errors import UsageError
from .text import inert as safe

DEFAULT_ADMIN = "http://127.0.0.1:6480"
TIMEOUT = 15.0


def add_parsers(commands) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="wireproxy.toml: where the admin API listens, its token")
    common.add_argument("--admin", metavar="HOST:PORT", help=f"the admin API (default from --config, else {DEFAULT_ADMIN})")
    common.add_argument("--token-file", type=Path,
                        help="the admin token (default [admin] token_file, else beside the config file, "
                             "else beside the log key, as serve puts it, else ./wireproxy-admin.token)")
    common.add_argument("--log-dir", type=Path, help="the session log dir serve was given: the token is beside its key")

    approvals = commands.add_parser("approvals", help="see and decide statements held for approval")
    sub = approvals.add_subparsers(dest="approvals_command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", parents=[common], help="pending requests, oldest first")
    p.add_argument("--all", action="store_true", help="the latest requests whatever their state")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run_list)

    p = sub.add_parser("show", parents=[common], help="one request in full")
    p.add_argument("id", metavar="ID")
    p.add_argument("--json", action="store_true", help="the request as one JSON object")
    p.set_defaults(func=run_show)

    for name, text in (("approve", "let the statement run"), ("deny", "refuse the statement")):
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("id", metavar="ID")
        p.add_argument("--reason", default="", help="why (recorded in the session log)")
        p.add_argument("--as", dest="approver", metavar="NAME",
                       help="who decides (default $WIREPROXY_APPROVER, else your login name)")
        if name == "approve":
            p.add_argument("--window", metavar="DURATION",
                           help="also let this user run statements like this one for DURATION (15m, 2h)")
        p.set_defaults(func=run_decide, action=name)


# --- the API -------------------------------------------------------------------------------------


class Refused(Exception):
    """The API said no (4xx other than 401): exit 1."""


def _client(args) -> tuple[str, str]:
    config = load_config(args.config) if args.config else Config()
    if args.admin:
        base = args.admin if "://" in args.admin else f"http://{args.admin}"
    elif config.admin.listen is not None:
        base = f"http://{_reachable(str(config.admin.listen))}"
    else:
        base = config.admin.url or DEFAULT_ADMIN
    config.log = with_flags(config.log, args.log_dir)
    token_file = args.token_file or config.token_file
    return base.rstrip("/"), read_token(token_file)


def _reachable(address: str) -> str:
    """A wildcard listen address is reached on loopback."""
    host, _, port = address.rpartition(":")
    return {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(host, host) + ":" + port


def call(args, method: str, path: str, body: dict | None = None) -> Any:
    base, token = _client(args)
    data = json.dumps(body).encode("utf-8") if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Accept": "application/json",
        **({"Content-Type": "application/json"} if data is not None else {})})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        message = _error_message(exc)
        if exc.code == 401:
            raise UsageError(f"the admin API at {base} refused the token ({message})") from None
        if exc.code >= 500 or exc.code == 404 and "no such endpoint" in message:
            raise UsageError(f"the admin API at {base}: {message}") from None
        raise Refused(message) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UsageError(f"cannot reach the admin API at {base}: {reason}") from None


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        return json.loads(exc.read().decode("utf-8"))["error"]["message"]
    except (ValueError, KeyError, TypeError, OSError):
        return f"HTTP {exc.code}"


def _command(func):
    def run(args) -> int:
        try:
            return func(args, sys.stdout)
        except Refused as exc:
            print(f"wireproxy: {exc}", file=sys.stderr)
            return 1
    return run


# --- commands ------------------------------------------------------------------------------------


@_command
def run_list(args, out: TextIO) -> int:
    found = call(args, "GET", "/approvals" + ("?state=all" if args.all else ""))["approvals"]
    if args.json:
        for item in found:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
        return 0
    if not found:
        print("no pending approvals" if not args.all else "no approvals", file=sys.stderr)
        return 0
    rows = [("ID", "STATE", "WAITING", "USER", "DATABASE", "RULE", "STATEMENT")]
    now = time.time()
    for item in found:
        rows.append((item["id"], item["state"], _age(now - item["created_ts"]) if item["state"] == "pending" else "",
                     safe(item["user"]), safe(item["database"]), safe(item["rule"]),
                     _one_line(item["statement"], 70)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] + "\n")
    return 0


@_command
def run_show(args, out: TextIO) -> int:
    item = call(args, "GET", f"/approvals/{_id(args.id)}")
    if args.json:
        out.write(json.dumps(item, ensure_ascii=False, indent=2) + "\n")
        return 0
    write_approval(item, out)
    return 0


@_command
def run_decide(args, out: TextIO) -> int:
    approver = args.approver or os.environ.get("WIREPROXY_APPROVER") or _login_name()
    body: dict[str, Any] = {"approver": approver, "reason": args.reason}
    if args.action == "approve" and args.window:
        body["window"] = args.window
    item = call(args, "POST", f"/approvals/{_id(args.id)}/{args.action}", body)
    line = f"{item['state']} {item['id']} by {safe(item['approver'])}"
    if item.get("grant") == "window" and item.get("window"):
        line += (f": {safe(item['user'])} may run statements like it for {format_duration(item['window'])}"
                 f" (until {item['grant_until']})")
    out.write(line + "\n")
    return 0


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        raise UsageError("who decides? name the approver with --as NAME (or $WIREPROXY_APPROVER)") from None


def write_approval(item: dict[str, Any], out: TextIO) -> None:
    now = time.time()
    out.write(f"approval {item['id']}  {item['state']}\n")
    facts = [("user", item.get("user")), ("database", item.get("database")), ("source", item.get("source")),
             ("client", item.get("client")), ("session", item.get("session"))]
    out.write("  " + "  ".join(f"{k} {safe(v)}" for k, v in facts if v) + "\n")
    approvers = ", ".join(map(safe, item.get("approvers") or [])) or f"anyone but {safe(item.get('user'))}"
    out.write(f"  rule {safe(item.get('rule'))}  approvers: {approvers}\n")
    line = f"  requested {item['created']}"
    if item["state"] == "pending":
        line += f", {_age(now - item['created_ts'])} ago; times out in {_age(item['expires_ts'] - now)}"
    out.write(line + "\n")
    out.write("  statement:\n")
    for text in str(item.get("statement", "")).splitlines() or [""]:
        out.write(f"    {safe(text)}\n")
    if item["state"] != "pending":
        decided = f"  {item['state']} {item.get('decided')}"
        if item.get("approver"):
            decided += f" by {safe(item['approver'])}"
        if item.get("reason"):
            decided += f": {safe(item['reason'])}"
        out.write(decided + "\n")
        if item.get("grant_until"):
            out.write(f"  window grant for {format_duration(item['window'])}, until {item['grant_until']}\n")
    else:
        out.write(f"  approve: wireproxy approvals approve {item['id']} [--window 15m] [--reason R]\n"
                  f"  deny:    wireproxy approvals deny {item['id']} [--reason R]\n")


def _one_line(text: str, width: int) -> str:
    flat = " ".join(str(text).split())
    flat = safe(flat)
    return flat if len(flat) <= width else flat[:width - 1] + "…"


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _id(text: str) -> str:
    if not text or not all(ch.isalnum() or ch in "-_" for ch in text) or len(text) > 64:
        raise UsageError(f"{text!r} is not an approval id (like ap-k3x9f2m4q7ab)")
    return text
