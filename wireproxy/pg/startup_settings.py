"""What a client asks for in its startup packet, judged like the statements it stands for.

A startup packet can set any run-time parameter: directly (`search_path=evil`, `role=admin`) or
through `options` (`-c search_path=evil`, `--role=admin`, as PGOPTIONS and JDBC's options
send them). Each one is the same as a SET at the start of the session, so each is judged as
`SET name TO 'value'` by the session's rules; a rule that stops the SET stops the session.

`replication` asks for a walsender: a connection that speaks replication commands
(BASE_BACKUP copies the whole cluster) no rule can read. It is refused unless the listener
allows it.
"""

from __future__ import annotations

PROTOCOL_KEYS = frozenset({"user", "database", "options", "replication"})
_OFF = frozenset({"", "0", "off", "false", "no"})


class BadOptions(ValueError):
    """An `options` value PostgreSQL would refuse too."""


def wants_replication(parameters: dict[str, str]) -> bool:
    return parameters.get("replication", "").strip().lower() not in _OFF


def settings_of(parameters: dict[str, str]) -> list[tuple[str, str]]:
    """(name, value) of every run-time parameter the startup packet sets, in order."""
    out = [(k, v) for k, v in parameters.items() if k not in PROTOCOL_KEYS and not k.startswith("_pq_.")]
    options = parameters.get("options")
    if options:
        out += _options(options)
    return out


def as_set(name: str, value: str) -> str:
    """The SET statement a setting stands for, quoted so that its text is exactly the setting."""
    quoted = ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))
    return f"SET {quoted} TO '" + value.replace("'", "''") + "'"


def _options(text: str) -> list[tuple[str, str]]:
    """libpq's `options`: switches split on unescaped whitespace (a backslash escapes the next
    character), each `-c name=value`, `-cname=value` or `--name=value` (pg_split_opts)."""
    words, word, escaped, started = [], [], False, False
    for ch in text:
        if escaped:
            word.append(ch)
            escaped = False
        elif ch == "\\":
            escaped, started = True, True
        elif ch.isspace():
            if started:
                words.append("".join(word))
            word, started = [], False
        else:
            word.append(ch)
            started = True
    if started:
        words.append("".join(word))
    settings, i = [], 0
    while i < len(words):
        arg = words[i]
        if arg == "-c":
            if i + 1 == len(words):
                raise BadOptions('options: "-c" needs name=value')
            arg, i = words[i + 1], i + 1
        elif arg.startswith("-c"):
            arg = arg[2:]
        elif arg.startswith("--"):
            arg = arg[2:]
        else:
            raise BadOptions(f"options: unsupported switch {arg[:40]!r} (only -c name=value and --name=value)")
        name, sep, value = arg.partition("=")
        if not sep or not name:
            raise BadOptions(f"options: {arg[:40]!r} is not name=value")
        settings.append((name.replace("-", "_"), value))
        i += 1
    return settings
