"""Errors of the session log. `str()` of each is one line fit to show a user."""

from __future__ import annotations


class SessionLogError(Exception):
    """A problem a user can act on: bad key file, missing log, unknown session id."""


class KeyFileError(SessionLogError):
    """A key file is missing, unreadable, or not what it should be."""


class LogUnavailable(SessionLogError):
    """The session log cannot be written and the proxy is fail-closed: no new sessions."""
