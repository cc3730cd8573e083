"""Reading the user's TOML files (config and rules) with errors that name file and line.

tomllib gives no positions, so `TomlFile.line_of(path)` finds the line of a key by walking the
text once: table headers (`[a]`, `[[a]]`) and `key =` lines. That is enough to point a user at
the offending line of any file a person writes; it returns None where it cannot tell.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")


class ConfigError(Exception):
    """A mistake in a file the user wrote. `str()` is the one line shown to them."""

    def __init__(self, path: str | Path, line: int | None, problem: str):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {problem}")


@dataclass
class TomlFile:
    path: Path
    text: str
    data: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> TomlFile:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(path, None, "file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(path, None, f"cannot read: {exc.__class__.__name__}: {exc}") from None
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: str | Path = "<string>") -> TomlFile:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(path, *_decode_error(exc, text)) from None
        return cls(Path(path), text, data)

    def line_of(self, *keys: str | int) -> int | None:
        """Line of the value at `keys`, e.g. ("rule", 2, "action"); the table's header line when
        the last key is not found, None when even the table is not found."""
        table_keys = [k for k in keys if isinstance(k, str)]
        # What we look for: a header naming the table path, then (optionally) a key line.
        counts: dict[tuple[str, ...], int] = {}
        header_path: tuple[str, ...] = ()
        header_index: int | None = None
        wanted_table, wanted_key = _split_target(keys)
        found_header_line: int | None = 1 if not wanted_table else None
        for lineno, line in enumerate(self.text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                name = tuple(p.strip().strip('"\'') for p in header.group(2).split("."))
                if header.group(1) == "[[":
                    header_index = counts.get(name, 0)
                    counts[name] = header_index + 1
                else:
                    header_index = None
                header_path = name
                if _same_table(header_path, header_index, wanted_table):
                    found_header_line = lineno
                continue
            key = _KEY.match(line)
            if not key:
                continue
            name = key.group(1).strip('"\'')
            full = header_path + tuple(name.split("."))
            if wanted_key is not None and _same_table(header_path, header_index, wanted_table) and name == wanted_key:
                return lineno
            if wanted_key is None and not wanted_table and full == tuple(table_keys):
                return lineno
        return found_header_line


def _decode_error(exc: tomllib.TOMLDecodeError, text: str) -> tuple[int | None, str]:
    """tomllib's message -> (line, problem). It says "(at line N, column M)", or "(at end of
    document)" for what runs off the end (an unclosed array or string, `key =` and nothing): that
    one is pinned to the last line that has something on it, so the message still names a line."""
    message = str(exc)
    match = re.search(r"\(at line (\d+), column \d+\)", message)
    if match:
        return int(match.group(1)), "invalid TOML: " + message[:match.start()].rstrip()
    if "(at end of document)" in message:
        lines = text.splitlines()
        last = max((i for i, line in enumerate(lines, start=1) if line.strip()), default=1)
        problem = message.replace("(at end of document)", "").rstrip()
        return last, f"invalid TOML: {problem} (the file ends before it is closed)"
    return None, f"invalid TOML: {message}"


def _split_target(keys: tuple[str | int, ...]) -> tuple[list[str | int], str | None]:
    """("rule", 2, "action") -> (["rule", 2], "action"); ("mode",) -> ([], "mode")."""
    if keys and isinstance(keys[-1], str):
        return list(keys[:-1]), keys[-1]
    return list(keys), None


def _same_table(path: tuple[str, ...], index: int | None, wanted: list[str | int]) -> bool:
    names = tuple(k for k in wanted if isinstance(k, str))
    indexes = [k for k in wanted if isinstance(k, int)]
    if path != names:
        return False
    if indexes:
        return index == indexes[-1]
    return index is None


class Checker:
    """Validates one table of a TomlFile, raising ConfigError at the first problem.

    Usage: `c = Checker(file, ("rule", 0)); c.get("id", str, required=True); c.done()`;
    `done()` refuses keys nobody asked for, so a typo is never silently ignored, and suggests
    the nearest key that was asked for (`did_you_mean`); `choice()` does the same for values.
    An optional table is asked for with `has(key)`, so it is among the suggestions too.
    """

    def __init__(self, file: TomlFile, where: tuple[str | int, ...], table: dict[str, Any] | None = None):
        self.file = file
        self.where = where
        self.table = table if table is not None else _dig(file.data, where)
        self.seen: set[str] = set()

    def error(self, key: str | None, problem: str) -> ConfigError:
        if key is None:             # about the table as a whole ("X or Y is required"): a typo explains it best
            typo = self._typo()
            if typo is not None:
                return typo
        keys = self.where + ((key,) if key else ())
        return ConfigError(self.file.path, self.file.line_of(*keys), problem)

    def _typo(self) -> ConfigError | None:
        """An unknown key close to a known one that is missing: `column` for `columns`."""
        missing = [k for k in self.seen if k not in self.table]
        for key in self.table:
            hint = did_you_mean(key, missing) if key not in self.seen else ""
            if hint:
                return ConfigError(self.file.path, self.file.line_of(*self.where, key),
                                   f"unknown key {self.name(key)!r}{hint}")
        return None

    def name(self, key: str) -> str:
        parts = [str(k) if isinstance(k, str) else f"[{k}]" for k in self.where]
        prefix = ".".join(parts).replace(".[", "[")
        return f"{prefix}.{key}" if prefix else key

    def has(self, key: str) -> bool:
        """Whether the (optional) key is there; either way it is a key this table knows."""
        self.seen.add(key)
        return key in self.table

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        self.seen.add(key)
        if key not in self.table:
            if required:
                raise self.error(None, f"missing required key {self.name(key)!r}")
            return default
        value = self.table[key]
        if not _is(value, kind):
            raise self.error(key, f"{self.name(key)} must be {_kind_name(kind)}, not {_kind_name(type(value))}")
        return value

    def get_list(self, key: str, item: type, default: list | None = None) -> list:
        value = self.get(key, list, default if default is not None else [])
        for element in value:
            if not _is(element, item):
                raise self.error(key, f"{self.name(key)} must be a list of {_kind_name(item)}")
        return list(value)

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None, *, required: bool = False) -> str:
        value = self.get(key, str, default, required=required)
        if value not in choices:
            raise self.error(key, f"{self.name(key)} must be one of {', '.join(choices)}, not {value!r}"
                                  + did_you_mean(value, choices))
        return value

    def done(self) -> None:
        for key in self.table:
            if key not in self.seen:
                raise self.error(key, f"unknown key {self.name(key)!r}" + did_you_mean(key, self.seen))


def did_you_mean(word: str, options) -> str:
    """' (did you mean 'statements'?)' for the nearest of `options` (difflib), else ''. For
    any loader that names what it knows: keys, actions, statement kinds, detectors."""
    found = difflib.get_close_matches(str(word), sorted(str(o) for o in options), n=1, cutoff=0.6)
    return f" (did you mean {found[0]!r}?)" if found else ""


def _dig(data: Any, where: tuple[str | int, ...]) -> dict[str, Any]:
    for key in where:
        data = data[key]
    return data


def _is(value: Any, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # TOML true is not an integer here
    return isinstance(value, kinds)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)
