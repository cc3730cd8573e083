"""Structured logs: one JSON object per line on stderr.

`log(event, **fields)` is all the proxy calls. Values pass through json with str() as the
fallback, so a log line never fails to render. Secrets never reach here: callers log names,
sizes and decisions, never passwords or keys.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

_stream: TextIO = sys.stderr


def set_stream(stream: TextIO) -> None:
    global _stream
    _stream = stream


def log(event: str, level: str = "info", **fields: Any) -> None:
    record = {"ts": round(time.time(), 3), "level": level, "event": event}
    record.update(fields)
    try:
        _stream.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")
        _stream.flush()
    except (OSError, ValueError):
        pass   # a closed stderr must not take a session down
