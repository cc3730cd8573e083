"""The `[[http]]` listeners of wireproxy.toml (see README, "The HTTP path"): typed, validated,
errors naming file, line and key like every other table."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .tomlfile import Checker

if TYPE_CHECKING:
    from .settings import Address


@dataclass
class HttpClientEntry:
    """`[[http.client]]`: a client identity with its own wireproxy API key (stored as a digest)."""
    name: str
    key_sha256: bytes
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    groups: tuple[str, ...] = ()           # what rules' and masks' `groups` match for this client


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
    tls_cert: Path | None = None           # TLS towards clients (both or neither; reloaded on SIGHUP)
    tls_key: Path | None = None
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



def http_listener(c: Checker, base: Path) -> HttpListener:
    from .settings import _address, _path, _positive  # (settings imports this module)

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
    listener.tls_cert = _path(base, c.get("tls_cert", str))
    listener.tls_key = _path(base, c.get("tls_key", str))
    if (listener.tls_cert is None) != (listener.tls_key is None):
        raise c.error("tls_key" if listener.tls_key is None else "tls_cert",
                      "tls_cert and tls_key go together")
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
    listener.clients = _clients(c)
    return listener


def _clients(c: Checker) -> list[HttpClientEntry]:
    from .settings import _positive

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
        entry = HttpClientEntry(name, digest, groups=_groups(cc))
        for key in ("requests_per_minute", "tokens_per_minute"):
            if key in cc.table:
                setattr(entry, key, _positive(cc, key, 1))
            else:
                cc.seen.add(key)
        cc.done()
        clients.append(entry)
    return clients


def _groups(c: Checker) -> tuple[str, ...]:
    groups = c.get_list("groups", str)
    for group in groups:
        if not group.strip() or group != group.strip():
            raise c.error("groups", f"{c.name('groups')}: {group!r} is not a group name")
    return tuple(dict.fromkeys(groups))
