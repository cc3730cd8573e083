"""wireproxy.toml -> a validated, typed Config. Errors name file, line and key (ConfigError).

Relative paths are relative to the config file. `Config.defaults()` is what `serve` runs on
with no file: Postgres on 127.0.0.1:6432 to 127.0.0.1:5432 with rules/default.toml.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..approvals.model import parse_duration
from ..auth import Directory
from ..pgclient import PgTarget
from .http_settings import HttpClientEntry, HttpListener, http_listener
from .identity import load_directory, postgres_identity
from .locations import TOKEN_FILE_NAME, key_file_for
from .packs import DEFAULT_RULES
from .tomlfile import Checker, ConfigError, TomlFile

PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent    # the checkout (bench, tests); not the packs
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
MAX_WORKERS = 256


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str) -> Address:
    """"HOST:PORT" or "[V6]:PORT" -> Address; ValueError with a plain reason otherwise."""
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return Address(host, int(port))


@dataclass
class PostgresListener:
    listen: Address
    upstream: Address
    rules: list[Path] = field(default_factory=list)
    max_connections: int = 1000
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    connect_timeout: float = 10.0
    tls_cert: Path | None = None               # TLS towards clients (both or neither)
    tls_key: Path | None = None
    require_tls: bool = False                  # refuse plaintext clients
    upstream_sslmode: str = "disable"          # disable | require | verify-full
    upstream_ca: Path | None = None            # verify-full: the CA file (default: the system's)
    upstream_user: str | None = None           # held credentials: clients never see them
    upstream_password_env: str | None = None
    upstream_password_file: Path | None = None
    upstream_roles: dict[str, str] = field(default_factory=dict)   # "alice" / "group:ops" -> role
    login_methods: tuple[str, ...] = ("scram", "jwt")               # how clients may log in to wireproxy
    allow_replication: bool = False            # walsender connections (BASE_BACKUP) pass

    @property
    def holds_credentials(self) -> bool:
        return self.upstream_user is not None or bool(self.upstream_roles)


@dataclass
class TcpListener:
    listen: Address
    upstream: Address
    allow_from: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    max_connections: int = 1000
    connect_timeout: float = 10.0

    def allows(self, host: str) -> bool:
        if not self.allow_from:
            return True
        try:
            address = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.allow_from if network.version == address.version)


@dataclass
class LogConfig:
    dir: Path | None = None
    key_file: Path | None = None
    fail_open: bool = False
    max_result_bytes: int = 0
    retention_days: float | None = None
    retention_max_bytes: int | None = None


@dataclass
class AdminConfig:
    listen: Address | None = None
    token_file: Path | None = None      # default: beside the config file (see Config.token_file)
    url: str | None = None              # how people reach the API (webhooks); default http://listen

    @property
    def public_url(self) -> str | None:
        if self.url:
            return self.url.rstrip("/")
        return f"http://{self.listen}" if self.listen is not None else None


@dataclass
class ApprovalsConfig:
    store: str = "memory"               # memory | postgres
    dsn: str | None = None              # postgres: postgresql://user@host:port/db (no password)
    password_env: str | None = None     # postgres: the environment variable holding the password
    table: str = "wireproxy_approvals"
    timeout: float = 300.0              # a request's default wait, when its rule names none
    notice_interval: float = 10.0       # how often a held client is told it still waits
    max_window: float = 86400.0         # the longest window grant an approver may give
    webhook: str | None = None          # POSTed a JSON document for each new request
    webhook_timeout: float = 5.0
    webhook_retries: int = 3


@dataclass
class Config:
    path: Path | None = None
    log: LogConfig = field(default_factory=LogConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    approvals: ApprovalsConfig = field(default_factory=ApprovalsConfig)
    postgres: list[PostgresListener] = field(default_factory=list)
    tcp: list[TcpListener] = field(default_factory=list)
    http: list[HttpListener] = field(default_factory=list)
    directory: Directory = field(default_factory=Directory)     # [[user]] and [jwt]
    shutdown_grace: float = 30.0
    workers: int = 1                    # processes serving the same ports (SO_REUSEPORT)

    @classmethod
    def defaults(cls) -> Config:
        return cls(postgres=[PostgresListener(parse_address("127.0.0.1:6432"),
                                              parse_address("127.0.0.1:5432"), [DEFAULT_RULES])])

    @property
    def token_file(self) -> Path:
        """The admin token: [admin] token_file, else beside the config file, else beside the
        log key file (config.locations), else in the working directory."""
        if self.admin.token_file is not None:
            return self.admin.token_file
        for anchor in (self.path, key_file_for(self.log)):
            if anchor is not None:
                return Path(anchor).resolve().parent / TOKEN_FILE_NAME
        return Path(TOKEN_FILE_NAME).resolve()

    @property
    def rule_files(self) -> list[Path]:
        seen: list[Path] = []
        for listener in [*self.postgres, *self.http]:
            for path in listener.rules:
                if path not in seen:
                    seen.append(path)
        return seen


def load_config(path: str | Path) -> Config:
    file = TomlFile.load(path)
    base = file.path.resolve().parent
    top = Checker(file, ())
    config = Config(path=file.path)
    config.shutdown_grace = float(top.get("shutdown_grace", (int, float), 30.0))
    if config.shutdown_grace < 0:
        raise top.error("shutdown_grace", "shutdown_grace must not be negative")
    if top.has("workers"):
        try:
            config.workers = parse_workers(top.get("workers", (int, str)))
        except ValueError as exc:
            raise top.error("workers", str(exc)) from None

    if top.has("log"):
        c = _table(top, "log")
        config.log = LogConfig(
            dir=_path(base, c.get("dir", str)),
            key_file=_path(base, c.get("key_file", str)),
            fail_open=c.get("fail_open", bool, False),
            max_result_bytes=_positive(c, "max_result_bytes", 0, zero_ok=True),
            retention_days=c.get("retention_days", (int, float)),
            retention_max_bytes=c.get("retention_max_bytes", int),
        )
        c.done()
    if top.has("admin"):
        c = _table(top, "admin")
        config.admin = AdminConfig(listen=_address(c, "listen"),
                                   token_file=_path(base, c.get("token_file", str)),
                                   url=_url(c, "url"))
        c.done()
    if top.has("approvals"):
        config.approvals = _approvals(_table(top, "approvals"))
    config.directory = load_directory(top, base)
    for i, c in enumerate(_array(top, "postgres")):
        listener = PostgresListener(
            listen=_address(c, "listen", required=True),
            upstream=_address(c, "upstream", required=True),
            rules=[_path(base, r) for r in c.get_list("rules", str)],
            max_connections=_positive(c, "max_connections", 1000),
            max_message_size=_positive(c, "max_message_size", DEFAULT_MAX_MESSAGE_SIZE),
            connect_timeout=float(c.get("connect_timeout", (int, float), 10.0)),
            allow_replication=c.get("allow_replication", bool, False),
        )
        postgres_identity(c, base, listener, config.directory)
        config.postgres.append(listener)
        c.done()
    for c in _array(top, "tcp"):
        networks = []
        for text in c.get_list("allow_from", str):
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise c.error("allow_from", f"{text!r} is not a network (e.g. 127.0.0.0/8)") from None
        config.tcp.append(TcpListener(
            listen=_address(c, "listen", required=True),
            upstream=_address(c, "upstream", required=True),
            allow_from=networks,
            max_connections=_positive(c, "max_connections", 1000),
            connect_timeout=float(c.get("connect_timeout", (int, float), 10.0)),
        ))
        c.done()
    for c in _array(top, "http"):
        config.http.append(http_listener(c, base))
        c.done()
    top.done()
    problem = workers_problem(config)
    if problem is not None:
        raise ConfigError(file.path, file.line_of("workers"), problem)
    return config


def parse_workers(value: int | str) -> int:
    """`workers = N` or "auto" (one per core) -> N; ValueError with the reason otherwise."""
    if value == "auto":
        return os.cpu_count() or 1
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            raise ValueError(f'workers must be a positive integer or "auto", not {value!r}')
        value = int(value)
    if isinstance(value, bool) or not 1 <= value <= MAX_WORKERS:
        raise ValueError(f"workers must be between 1 and {MAX_WORKERS}")
    return value


def workers_problem(config: Config) -> str | None:
    """What stops this config from running in several processes, or None."""
    if config.workers > 1 and config.admin.listen is not None and config.approvals.store == "memory":
        return (f"workers = {config.workers} with an admin listener needs [approvals] store = \"postgres\": "
                "the memory store lives in one process, so an approval decided on one worker would "
                "never reach a statement held on another")
    return None


def _approvals(c: Checker) -> ApprovalsConfig:
    def duration(key: str, default: float) -> float:
        value = c.get(key, (int, float, str), default)
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise c.error(key, f"{c.name(key)}: {exc}") from None

    store = c.choice("store", ("memory", "postgres"), "memory")
    dsn = c.get("dsn", str)
    if store == "postgres" and dsn is None:
        raise c.error("store", 'approvals.store = "postgres" needs approvals.dsn (postgresql://user@host:port/db)')
    if dsn is not None:
        try:
            PgTarget.parse(dsn)
        except ValueError as exc:
            raise c.error("dsn", f"approvals.dsn: {exc}") from None
    password_env = c.get("password_env", str)
    if password_env is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", password_env):
        raise c.error("password_env", "approvals.password_env must name an environment variable")
    table = c.get("table", str, "wireproxy_approvals")
    if not re.match(r"^[a-z_][a-z0-9_]{0,62}$", table):
        raise c.error("table", "approvals.table must be a lower-case SQL identifier")
    settings = ApprovalsConfig(
        store=store, dsn=dsn, password_env=password_env, table=table,
        timeout=duration("timeout", 300.0), notice_interval=duration("notice_interval", 10.0),
        max_window=duration("max_window", 86400.0), webhook=_url(c, "webhook"),
        webhook_timeout=duration("webhook_timeout", 5.0),
        webhook_retries=_positive(c, "webhook_retries", 3, zero_ok=True))
    c.done()
    return settings


def _url(c: Checker, key: str) -> str | None:
    url = c.get(key, str)
    if url is not None and not re.match(r"^https?://[^\s/?#]+", url):
        raise c.error(key, f"{c.name(key)} must be an http:// or https:// URL")
    return url


def _table(top: Checker, key: str) -> Checker:
    top.get(key, dict)
    return Checker(top.file, (key,))


def _array(top: Checker, key: str) -> list[Checker]:
    tables = top.get(key, list, [])
    checkers = []
    for i, table in enumerate(tables):
        if not isinstance(table, dict):
            raise top.error(key, f"{key} must be written as [[{key}]] tables")
        checkers.append(Checker(top.file, (key, i), table))
    return checkers


def _address(c: Checker, key: str, *, required: bool = False) -> Address | None:
    text = c.get(key, str, required=required)
    if text is None:
        return None
    try:
        return parse_address(text)
    except ValueError as exc:
        raise c.error(key, f"{c.name(key)}: {exc}") from None


def _positive(c: Checker, key: str, default: int, *, zero_ok: bool = False) -> int:
    value = c.get(key, int, default)
    if value < 0 or (value == 0 and not zero_ok):
        raise c.error(key, f"{c.name(key)} must be a positive integer")
    return value


def _path(base: Path, text: str | None) -> Path | None:
    if text is None:
        return None
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


__all__ = [
    "DEFAULT_RULES",
    "Address",
    "AdminConfig",
    "ApprovalsConfig",
    "Config",
    "HttpClientEntry",
    "HttpListener",
    "LogConfig",
    "PostgresListener",
    "TcpListener",
    "load_config",
    "parse_address",
    "parse_workers",
    "workers_problem",
]
