"""Who is calling: per-client API keys issued in the config, the upstream's real key injected.

A client presents its wireproxy key the way its SDK sends an API key: `Authorization: Bearer`
(OpenAI, MCP), `x-api-key` (Anthropic) or `api-key` (Azure OpenAI). The key is compared, as a
SHA-256 digest, with every configured client's in constant time; the headers that carried it
are never forwarded. The upstream key (from an environment variable, never the config file)
goes out in the header style the client used, or the one `upstream_auth` names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

KEY_HEADERS = ("authorization", "x-api-key", "api-key")


@dataclass(frozen=True)
class ClientKey:
    name: str
    digest: bytes                       # sha256 of the key
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    groups: frozenset[str] = frozenset()   # what rules' and masks' `groups` match


def presented_key(headers: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    """(the key a client sent, the header style it used)."""
    for name, value in headers:
        if name == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip(), "bearer"
        elif name in ("x-api-key", "api-key") and value.strip():
            return value.strip(), name
    return None, None


def proxy_key(headers: list[tuple[str, str]]) -> str | None:
    """The key in `Proxy-Authorization` (HTTPS_PROXY=http://NAME:KEY@host:port sends it as Basic;
    Bearer works too)."""
    for name, value in headers:
        if name != "proxy-authorization":
            continue
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "bearer":
            return token.strip() or None
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return None
            return decoded.partition(":")[2] or None
    return None


def identify(keys: tuple[ClientKey, ...], presented: str | None) -> ClientKey | None:
    if presented is None:
        return None
    digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
    found = None
    for client in keys:                 # no early exit: every key costs the same
        if hmac.compare_digest(client.digest, digest):
            found = client
    return found


def without_keys(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k not in KEY_HEADERS]


def upstream_auth_header(style: str, key: str) -> tuple[str, str]:
    if style == "bearer":
        return ("authorization", f"Bearer {key}")
    return (style, key)
