"""wireproxy.toml -> a validated, typed Config. Errors name file, line and key (ConfigError).

Relative paths are relative to the config file. `Config.defaults()` is what `serve` runs on
with no file: Postgres on 127.0.0.1:6432 to 127.0.0.1:5432 with rules/default.toml.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from .tomlfile import Checker, TomlFile

PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_RULES = PACKAGE_ROOT / "rules" / "default.toml"
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024


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
class HttpClientEntry:
    """`[[http.client]]`: a client identity with its own wireproxy API key (stored as a digest)."""
    name: str
    key_sha256: bytes
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


@dataclass
class HttpListener:
    listen: Address
    upstream: str | None = None           # None: a forward proxy (HTTP_PROXY / HTTPS_PROXY)
    rules: list[Path] = field(default_factory=list)
    max_connections: int = 1000
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 32 * 1024 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    idle_timeout: float = 60.0
    connect_timeout: float = 10.0
    read_timeout: float = 300.0
    upstream_ca: Path | None = None
    upstream_key_env: str | None = None
    upstream_auth: str = "auto"            # auto (as the client sent it) | bearer | x-api-key | api-key
    clients: list[HttpClientEntry] = field(default_factory=list)
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    intercept: list[str] = field(default_factory=list)   # forward proxy: hosts whose TLS is opened
    unlisted: str = "tunnel"               # forward proxy, other hosts: tunnel | refuse
    ca_cert: Path | None = None
    ca_key: Path | None = None
    record_body_bytes: int = 65536
    approval_timeout: float = 300.0


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
    token_file: Path | None = None


@dataclass
class Config:
    path: Path | None = None
    log: LogConfig = field(default_factory=LogConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    postgres: list[PostgresListener] = field(default_factory=list)
    tcp: list[TcpListener] = field(default_factory=list)
    http: list[HttpListener] = field(default_factory=list)
    shutdown_grace: float = 30.0

    @classmethod
    def defaults(cls) -> "Config":
        return cls(postgres=[PostgresListener(parse_address("127.0.0.1:6432"),
                                              parse_address("127.0.0.1:5432"), [DEFAULT_RULES])])

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

    if "log" in file.data:
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
    if "admin" in file.data:
        c = _table(top, "admin")
        config.admin = AdminConfig(listen=_address(c, "listen"),
                                   token_file=_path(base, c.get("token_file", str)))
        c.done()
    for i, c in enumerate(_array(top, "postgres")):
        config.postgres.append(PostgresListener(
            listen=_address(c, "listen", required=True),
            upstream=_address(c, "upstream", required=True),
            rules=[_path(base, r) for r in c.get_list("rules", str)],
            max_connections=_positive(c, "max_connections", 1000),
            max_message_size=_positive(c, "max_message_size", DEFAULT_MAX_MESSAGE_SIZE),
            connect_timeout=float(c.get("connect_timeout", (int, float), 10.0)),
        ))
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
        config.http.append(_http_listener(c, base))
        c.done()
    top.done()
    return config


def _http_listener(c: Checker, base: Path) -> HttpListener:
    upstream = c.get("upstream", str)
    if upstream is not None and not upstream.startswith(("http://", "https://")):
        raise c.error("upstream", f"upstream must be an http:// or https:// URL, not {upstream!r}")
    listener = HttpListener(listen=_address(c, "listen", required=True), upstream=upstream,
                            rules=[_path(base, r) for r in c.get_list("rules", str)])
    for key in ("max_connections", "max_header_bytes", "max_body_bytes", "record_body_bytes"):
        setattr(listener, key, _positive(c, key, getattr(listener, key), zero_ok=key == "record_body_bytes"))
    for key in ("header_timeout", "body_timeout", "idle_timeout", "connect_timeout", "read_timeout",
                "approval_timeout"):
        value = float(c.get(key, (int, float), getattr(listener, key)))
        if value <= 0:
            raise c.error(key, f"{c.name(key)} must be a positive number of seconds")
        setattr(listener, key, value)
    listener.upstream_ca = _path(base, c.get("upstream_ca", str))
    listener.upstream_key_env = c.get("upstream_key_env", str)
    listener.upstream_auth = c.choice("upstream_auth", ("auto", "bearer", "x-api-key", "api-key"), "auto")
    for key in ("requests_per_minute", "tokens_per_minute"):
        if key in c.table:
            setattr(listener, key, _positive(c, key, 1))
        else:
            c.seen.add(key)
    listener.intercept = c.get_list("intercept", str)
    listener.unlisted = c.choice("unlisted", ("tunnel", "refuse"), "tunnel")
    listener.ca_cert = _path(base, c.get("ca_cert", str))
    listener.ca_key = _path(base, c.get("ca_key", str))
    if upstream is not None and (listener.intercept or "unlisted" in c.table):
        raise c.error("intercept" if listener.intercept else "unlisted",
                      "intercept and unlisted are for a forward proxy ([[http]] without upstream)")
    listener.clients = _http_clients(c)
    return listener


def _http_clients(c: Checker) -> list[HttpClientEntry]:
    import hashlib
    import os

    clients: list[HttpClientEntry] = []
    names: set[str] = set()
    tables = c.get("client", list, [])
    for j, table in enumerate(tables):
        if not isinstance(table, dict):
            raise c.error("client", f"{c.name('client')} must be written as [[http.client]] tables")
        cc = Checker(c.file, c.where + ("client", j), table)
        name = cc.get("name", str, required=True)
        if not name.strip() or name in names:
            raise cc.error("name", f"{cc.name('name')}: {name!r} is empty or used twice")
        names.add(name)
        digest_hex = cc.get("key_sha256", str)
        key_env = cc.get("key_env", str)
        if (digest_hex is None) == (key_env is None):
            raise cc.error(None, f"{cc.name('key_sha256')} or {cc.name('key_env')} is required (one of them)")
        if digest_hex is not None:
            try:
                digest = bytes.fromhex(digest_hex)
            except ValueError:
                digest = b""
            if len(digest) != 32:
                raise cc.error("key_sha256", f"{cc.name('key_sha256')} must be 64 hex digits (sha256 of the key)")
        else:
            key = os.environ.get(key_env, "")
            if not key:
                raise cc.error("key_env", f"{cc.name('key_env')}: environment variable {key_env} is not set")
            digest = hashlib.sha256(key.encode()).digest()
        entry = HttpClientEntry(name, digest)
        for key in ("requests_per_minute", "tokens_per_minute"):
            if key in cc.table:
                setattr(entry, key, _positive(cc, key, 1))
            else:
                cc.seen.add(key)
        cc.done()
        clients.append(entry)
    return clients


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


__all__ = ["Address", "Config", "LogConfig", "PostgresListener", "TcpListener",
           "HttpListener", "HttpClientEntry", "AdminConfig", "load_config", "parse_address", "DEFAULT_RULES"]
