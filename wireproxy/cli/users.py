"""`wireproxy users add NAME [--groups G,...] [--iterations N]`: a `[[user]]` entry for the config.

The password is read from the terminal (asked twice) or, when stdin is not a terminal, from
the first line of stdin; only its SCRAM-SHA-256 verifier is printed, as TOML to paste into
wireproxy.toml (or append with `>>`). The password itself is never printed, stored or logged.
"""

from __future__ import annotations

import getpass
import sys

from ..auth.scram import ITERATIONS, MAX_ITERATIONS, make_verifier
from .errors import UsageError


def add_parser(commands) -> None:
    users = commands.add_parser("users", help="make [[user]] entries (SCRAM-SHA-256 verifiers)",
                                description="Clients authenticate to wireproxy as these users.")
    sub = users.add_subparsers(dest="users_command", metavar="COMMAND", required=True)
    add = sub.add_parser("add", help="print a [[user]] entry for NAME; the password is asked for "
                                     "(or read from the first line of stdin)")
    add.add_argument("name", metavar="NAME", help="the user name clients log in with")
    add.add_argument("--groups", metavar="G,...", default="", help="comma-separated groups, for scoped rules")
    add.add_argument("--iterations", metavar="N", type=int, default=ITERATIONS,
                     help=f"PBKDF2 iterations of the verifier (default {ITERATIONS}, as PostgreSQL)")
    add.set_defaults(run=run_add)


def run_add(args) -> int:
    name = args.name
    if not name or name != name.strip():
        raise UsageError(f"user name {name!r} is empty or padded with spaces")
    groups = [g.strip() for g in args.groups.split(",")] if args.groups else []
    if any(not g for g in groups):
        raise UsageError(f"--groups {args.groups!r} has an empty group name")
    if not all(_utf8(text) for text in (name, *groups)):
        raise UsageError("the user name and the groups must be valid UTF-8")
    if not 1 <= args.iterations <= MAX_ITERATIONS:
        raise UsageError(f"--iterations must be between 1 and {MAX_ITERATIONS}")
    verifier = make_verifier(_password(name), iterations=args.iterations)
    lines = ["[[user]]", f"name = {toml_string(name)}"]
    if groups:
        lines.append(f"groups = [{', '.join(toml_string(g) for g in dict.fromkeys(groups))}]")
    lines.append(f"scram = {toml_string(verifier)}")
    print("\n".join(lines))
    return 0


def _password(name: str) -> str | bytes:
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            password = getpass.getpass(f"Password for {name}: ")
            if password and getpass.getpass("Again: ") != password:
                raise UsageError("the passwords do not match")
        except EOFError:
            raise UsageError("no password given (end of input)") from None
    else:
        password = _first_line()
    if not password:
        raise UsageError("the password is empty (give it on the terminal or as the first line of stdin)")
    return password


def _first_line() -> str | bytes:
    """The first line of stdin without its line end; bytes when it is not UTF-8 (used raw, as
    PostgreSQL uses such passwords)."""
    stream = getattr(sys.stdin, "buffer", None)
    line = stream.readline() if stream is not None else (sys.stdin.readline().encode() if sys.stdin else b"")
    line = line.removesuffix(b"\n").removesuffix(b"\r")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:          # argv that was not UTF-8 arrives as lone surrogates
        return False
    return True


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch < " " or ch == "\x7f":
            out.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}.get(ch, f"\\u{ord(ch):04x}"))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
