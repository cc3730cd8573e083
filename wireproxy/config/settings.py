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
class HttpListener:
    listen: Address
    upstream: str | None = None
    rules: list[Path] = field(default_factory=list)


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
        upstream = c.get("upstream", str)
        if upstream is not None and not upstream.startswith(("http://", "https://")):
            raise c.error("upstream", f"upstream must be an http:// or https:// URL, not {upstream!r}")
        config.http.append(HttpListener(listen=_address(c, "listen", required=True), upstream=upstream,
                                        rules=[_path(base, r) for r in c.get_list("rules", str)]))
        c.done()
    top.done()
    return config


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
           "HttpListener", "AdminConfig", "load_config", "parse_address", "DEFAULT_RULES"]
