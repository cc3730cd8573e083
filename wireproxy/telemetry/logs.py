"""Structured logs: one JSON object per line on stderr.

`log(event, **fields)` is all the proxy calls. Values pass through json with str() as the
fallback, so a log line never fails to render. Secrets never reach here: callers log names,
sizes and decisions, never passwords or keys.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

_stream: TextIO = sys.stderr
_context: dict[str, Any] = {}       # fields on every line of this process (a worker's index)


def set_context(**fields: Any) -> None:
    _context.update(fields)


def set_stream(stream: TextIO) -> None:
    global _stream
    _stream = stream


class _Bridge(logging.Handler):
    """Library modules that use stdlib logging (the session-log writer) end up here too."""

    def emit(self, record: logging.LogRecord) -> None:
        log(record.name.removeprefix("wireproxy.").replace(".", "_") + ".message",
            level=record.levelname.lower(), message=record.getMessage())


def install_stdlib_bridge() -> None:
    root = logging.getLogger("wireproxy")
    if not any(isinstance(h, _Bridge) for h in root.handlers):
        root.addHandler(_Bridge())
        root.setLevel(logging.INFO)
        root.propagate = False


def log(event: str, level: str = "info", **fields: Any) -> None:
    record = {"ts": round(time.time(), 3), "level": level, "event": event, **_context}
    record.update(fields)
    try:
        _stream.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")
        _stream.flush()
    except (OSError, ValueError):
        pass   # a closed stderr must not take a session down
