"""What the demo runs, and the one place that takes it all down again.

A temp dir holds everything: the PostgreSQL cluster (wireproxy.embedded), the session logs and
their key, and the proxy's JSON log. wireproxy itself is `wireproxy.server.Server` on a trio
thread inside this process, so there is no second process to lose track of; its log lines go
to a file and are kept in memory, so the tour waits on real events (`connection.close`), never
on a sleep. `DemoStack.close()` is safe at any point of a half-finished start.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from ..config import Address, Config, LogConfig, PostgresListener
from ..config.packs import DEFAULT_RULES, RULES_DIR
from ..embedded import TRUST_HBA, LocalCluster, PgBinaries, find_binaries
from ..server import Server
from ..telemetry import logs

DEMO_RULES = RULES_DIR / "demo.toml"
DATABASE = "shop"
RECORDED_RESULT_BYTES = 512       # enough for the replay to show the first masked rows


class EventTap:
    """The proxy's log stream: each JSON line is written to a file and kept for `wait_for`."""

    def __init__(self, path: Path):
        self._file = open(path, "a", encoding="utf-8")
        self._cond = threading.Condition()
        self.events: list[dict[str, Any]] = []

    def write(self, text: str) -> None:
        self._file.write(text)
        with self._cond:
            for line in text.splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self.events.append(event)
            self._cond.notify_all()

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def wait_for(self, name: str, timeout: float = 20.0, **fields: Any) -> dict[str, Any]:
        def found():
            return next((e for e in self.events if e.get("event") == name
                         and all(e.get(k) == v for k, v in fields.items())), None)
        with self._cond:
            if not self._cond.wait_for(found, timeout):
                raise TimeoutError(f"wireproxy did not log {name!r} within {timeout:.0f}s")
            return found()


class ProxyThread:
    """wireproxy's Server on its own trio thread; start() returns once it listens."""

    def __init__(self, config: Config):
        self.config = config
        self.server: Server | None = None
        self.port: int | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="wireproxy", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("wireproxy did not start listening")
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:       # handed to the main thread by start()
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        self.server = Server(self.config)
        self._token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(self.server.run)
            self.port = next(port for addresses in bound.values() for _, port in addresses)
            self._ready.set()

    def flush_session_log(self) -> None:
        """Wait until every session record queued so far is written and synced."""
        if self.server is not None and self.server.session_log is not None and self._thread.is_alive():
            trio.from_thread.run(self.server.session_log.flush, trio_token=self._token)

    def stop(self, timeout: float = 30.0) -> None:
        if self._token is not None and self._thread.is_alive():
            try:
                trio.from_thread.run_sync(self.server.request_shutdown, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self._thread.join(timeout)


@dataclass
class DemoStack:
    root: Path
    cluster: LocalCluster | None = None
    proxy: ProxyThread | None = None
    events: EventTap | None = None

    @classmethod
    def create(cls) -> "DemoStack":
        return cls(Path(tempfile.mkdtemp(prefix="wireproxy-demo-")))

    @property
    def log_dir(self) -> Path:
        return self.root / "sessions"

    @property
    def key_file(self) -> Path:
        return self.root / "wireproxy.key"

    @property
    def proxy_log(self) -> Path:
        return self.root / "wireproxy.log"

    @property
    def binaries(self) -> PgBinaries:
        return self.cluster.binaries

    def dsn(self, *, direct: bool = False, application: str | None = None) -> str:
        dsn = self.cluster.dsn(dbname=DATABASE, port=None if direct else self.proxy.port)
        return dsn + (f" application_name={application}" if application else "")

    def url(self, *, direct: bool = False) -> str:
        return self.cluster.url(dbname=DATABASE, port=None if direct else self.proxy.port)

    def start_postgres(self, source: str | None) -> None:
        self.cluster = LocalCluster.start(binaries=find_binaries(source), parent=self.root, hba=TRUST_HBA)
        self.cluster.psql(f"CREATE DATABASE {DATABASE}")

    def start_proxy(self) -> None:
        self.events = EventTap(self.proxy_log)
        logs.set_stream(self.events)
        config = Config(
            log=LogConfig(dir=self.log_dir, key_file=self.key_file, max_result_bytes=RECORDED_RESULT_BYTES),
            postgres=[PostgresListener(Address("127.0.0.1", 0), Address(self.cluster.host, self.cluster.port),
                                       [DEFAULT_RULES, DEMO_RULES])],
            shutdown_grace=1.0)
        self.proxy = ProxyThread(config)
        self.proxy.start()

    def close(self) -> None:
        """Stop the proxy, then PostgreSQL, then remove the temp dir; each even if one before failed."""
        try:
            if self.proxy is not None:
                self.proxy.stop()
        finally:
            try:
                if self.cluster is not None:
                    self.cluster.stop()
            finally:
                if self.events is not None:
                    logs.set_stream(sys.stderr)
                    self.events.close()
                shutil.rmtree(self.root, ignore_errors=True)
