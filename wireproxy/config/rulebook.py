"""The live rules of the running proxy: loaded at start, reloaded on SIGHUP or a file change.

One RuleBook per distinct list of rule files, shared by the listeners that name it. A reload
that fails (a broken file) is reported, with file and line as at start-up, and changes nothing:
the old rules stay in force.

A change seen by the watcher is loaded once it has settled: when the files are as they were at
the previous poll. An editor, `cp` or `write_text` truncates a file and then writes it; read in
between, the file is empty (valid TOML: no rules at all) or cut short (an error "at end of
document", with no line to name). Neither is what the operator wrote, so neither is loaded.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ..auth import Identity
from ..masking import MaskConfigError, Masker
from ..policy import Policy
from ..telemetry.logs import log
from .rulefile import load_rules
from .tomlfile import ConfigError


def _stamp(paths: tuple[Path, ...]) -> tuple:
    stamps = []
    for path in paths:
        try:
            st = os.stat(path)
            stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


def as_identity(identity: Identity | str | None) -> Identity:
    """An Identity from what a caller has: an Identity, a claimed user name, or nothing (an
    unnamed identity, no groups)."""
    if isinstance(identity, Identity):
        return identity
    if identity is None or isinstance(identity, str):
        return Identity(name=identity or "")
    raise TypeError(f"an Identity or a user name, not {type(identity).__name__}")


class RuleBook:
    def __init__(self, paths: list[Path], hash_key: bytes = b""):
        self.paths = tuple(paths)
        self.hash_key = hash_key
        ruleset = load_rules(list(self.paths))   # ConfigError at start: serve refuses
        self.policy = Policy(ruleset)
        self.masker = self._masker(ruleset)
        self._stamp = _stamp(self.paths)
        self._pending: tuple | None = None       # a change seen at the last poll, not yet loaded

    def _masker(self, ruleset) -> Masker | None:
        if not ruleset.masks:
            return None
        if not self.hash_key and any(m.style == "hash" for m in ruleset.masks):
            self.hash_key = secrets.token_bytes(32)
            log("mask.hash_key", level="warning", note="no key file configured: hash-masked values "
                "change when wireproxy restarts")
        return Masker(ruleset.masks, custom=ruleset.detectors, hash_key=self.hash_key)

    def session_judge(self, identity: Identity | str | None):
        """A SessionJudge for one client connection, judging as `identity` (its name and
        groups; a plain str is a name without groups)."""
        who = as_identity(identity)
        return self.policy.session(who.name or None, who.groups)

    def session_masker(self, identity: Identity | str | None):
        """The masks in force for `identity` when the session starts (None: rows pass raw)."""
        if self.masker is None:
            return None
        who = as_identity(identity)
        return self.masker.for_user(who.name, who.groups)

    def changed_on_disk(self) -> bool:
        """The files changed since they were loaded, and not since the previous poll."""
        now = _stamp(self.paths)
        if now == self._stamp:
            self._pending = None
            return False
        settled, self._pending = now == self._pending, now
        return settled

    def reload(self, why: str) -> bool:
        before = _stamp(self.paths)
        self._stamp, self._pending = before, None
        try:
            ruleset = load_rules(list(self.paths))
            masker = self._masker(ruleset)
        except (ConfigError, MaskConfigError) as exc:
            if _stamp(self.paths) != before:          # written to while we read: wait for it to settle
                self._stamp = ()
                return False
            log("rules.reload_failed", level="error", why=why, error=str(exc),
                note="the previous rules stay in force")
            return False
        if _stamp(self.paths) != before:
            self._stamp = ()                          # a torn read: the watcher loads it when it settles
            return False
        self.policy.ruleset = ruleset
        self.masker = masker
        log("rules.reloaded", why=why, files=[str(p) for p in self.paths], version=self.policy.version)
        return True


class RuleBooks:
    """All RuleBooks of one server, by their files."""

    def __init__(self, hash_key: bytes = b"") -> None:
        self.hash_key = hash_key
        self.books: dict[tuple[Path, ...], RuleBook] = {}

    def for_files(self, paths: list[Path]) -> RuleBook | None:
        if not paths:
            return None
        key = tuple(Path(p).resolve() for p in paths)
        if key not in self.books:
            self.books[key] = RuleBook(list(key), self.hash_key)
        return self.books[key]

    def reload_all(self, why: str) -> None:
        for book in self.books.values():
            book.reload(why)

    def reload_changed(self) -> None:
        for book in self.books.values():
            if book.changed_on_disk():
                book.reload("file changed")
