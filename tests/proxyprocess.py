"""Run `wireproxy serve` as a real process and learn its ports from its own log.

wireproxy logs one JSON line per event on stderr; a thread reads them all (so the pipe never
fills) and `wait_for` blocks on an event by name, with a deadline. Ports come from the
`listening` events of a proxy told to bind port 0: nothing is guessed, nothing sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIREPROXY = [sys.executable, "-m", "wireproxy.cli"]


class ProxyProcess:
    def __init__(self, args: list[str], *, cwd: Path | None = None, env: dict | None = None):
        self.args = args
        self.events: list[dict] = []
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen([*WIREPROXY, *args], cwd=cwd or ROOT, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                try:
                    event = json.loads(line)
                except ValueError:
                    event = None
                if isinstance(event, dict):
                    self.events.append(event)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, name: str, timeout: float = 20.0, *, after: int = 0, **fields) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events[after:]:
                    if event.get("event") == name and all(event.get(k) == v for k, v in fields.items()):
                        return event
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(f"wireproxy exited ({self.proc.returncode}) before {name!r}:\n"
                                       + "\n".join(self.lines[-30:]))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {name!r} event within {timeout}s:\n" + "\n".join(self.lines[-30:]))
                self._cond.wait(left)

    def ports(self, kind: str = "postgres") -> list[int]:
        self.wait_for("ready")
        return [int(e["address"].rsplit(":", 1)[1]) for e in self.events
                if e.get("event") == "listening" and e.get("kind") == kind]

    @property
    def port(self) -> int:
        return self.ports()[0]

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode

    def count(self, name: str, **fields) -> int:
        with self._cond:
            return sum(1 for e in self.events if e.get("event") == name
                       and all(e.get(k) == v for k, v in fields.items()))
