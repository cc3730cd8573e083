"""Reaching the upstream: TLS as `upstream_sslmode` says, and the login with held credentials.

    stream = await secure_upstream(tcp_stream, listener)        # OSError if TLS cannot be had
    leftover = await login_upstream(stream, startup_packet, login, timeout)
    relay.server_data(leftover)                                 # AuthenticationOk and after

sslmode as libpq means it: `require` encrypts without checking the certificate, `verify-full`
checks the chain against `upstream_ca` (or the system's CAs) and the name or IP address the
upstream is configured by. A server that answers 'N' to a required SSLRequest is refused.
"""

from __future__ import annotations

import functools
import ssl

import trio

from protocols.postgres import (Authentication, ErrorResponse, Framer, NegotiateProtocolVersion, NoticeResponse,
                                ProtocolError, SSLRequest, decode_backend)
from protocols.postgres.login import LoginError, PasswordLogin

from ..streams import BUFSIZE

_GONE = (trio.BrokenResourceError, trio.ClosedResourceError)
MAX_LOGIN_MESSAGE = 1 << 20


class UpstreamLoginFailed(Exception):
    """The upstream refused our held credentials, or the login broke off; safe to log."""


@functools.lru_cache(maxsize=16)
def client_context(sslmode: str, cafile=None) -> ssl.SSLContext:
    """One context per (mode, CA file), made once: loading the CAs per connection would cost
    milliseconds each. Server.reload (SIGHUP) clears the cache, so a replaced CA file is read."""
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if sslmode == "require":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def secure_upstream(stream, listener, timeout: float = 10.0):
    """The stream to talk to the upstream on: as is, or TLS after an SSLRequest."""
    return await start_tls(stream, listener.upstream_sslmode, listener.upstream_ca, listener.upstream.host,
                           timeout=timeout)


async def start_tls(stream, sslmode: str, cafile, host: str, *, timeout: float = 10.0):
    """SSLRequest, then the handshake, as `sslmode` (disable | require | verify-full) asks;
    OSError with the reason when TLS cannot be had."""
    if sslmode == "disable":
        return stream
    context = client_context(sslmode, str(cafile) if cafile else None)
    try:
        with trio.fail_after(timeout):
            await stream.send_all(SSLRequest().encode())
            answer = await _receive_exactly(stream, 1)
            if answer != b"S":
                raise OSError(f"the server does not accept TLS (sslmode {sslmode})")
            secured = trio.SSLStream(stream, context, server_hostname=host)
            await secured.do_handshake()
    except trio.TooSlowError:
        raise OSError(f"TLS with the server timed out after {timeout:g}s") from None
    except trio.BrokenResourceError as exc:
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLCertVerificationError):
            raise OSError(f"server certificate rejected: {cause.verify_message}") from None
        raise OSError(f"TLS with the server failed: {cause or exc}") from None
    return secured


async def login_upstream(stream, startup_packet: bytes, login: PasswordLogin, timeout: float) -> bytes:
    """Send the startup, answer the authentication requests, and return what the server sent
    from its AuthenticationOk on (unread by us: the relay takes it from there), after what the
    client must see too: a NegotiateProtocolVersion (a 3.2 client meeting an older server) and
    notices."""
    framer = Framer(MAX_LOGIN_MESSAGE)
    for_client: list[bytes] = []
    try:
        with trio.fail_after(timeout):
            await stream.send_all(startup_packet)
            while True:
                data = await stream.receive_some(BUFSIZE)
                if not data:
                    raise UpstreamLoginFailed("the upstream closed the connection during the login")
                items = framer.feed(data)
                for index, (code, packet) in enumerate(items):
                    message = decode_backend(code, packet[5:])
                    if isinstance(message, ErrorResponse):
                        raise UpstreamLoginFailed(f"the upstream refused the login: {message.sqlstate} "
                                                  f"{message.message}")
                    if isinstance(message, (NegotiateProtocolVersion, NoticeResponse)):
                        for_client.append(packet)
                        continue
                    if not isinstance(message, Authentication):
                        raise UpstreamLoginFailed(f"unexpected {type(message).__name__} during the login")
                    reply = login.answer(message)
                    if login.done:
                        return b"".join([*for_client, *(p for _, p in items[index:]), framer.take_buffered()])
                    if reply:
                        await stream.send_all(reply)
    except trio.TooSlowError:
        raise UpstreamLoginFailed(f"no answer from the upstream within {timeout:g}s") from None
    except LoginError as exc:
        raise UpstreamLoginFailed(str(exc)) from None
    except ProtocolError as exc:
        raise UpstreamLoginFailed(f"malformed upstream data: {exc}") from None
    except _GONE:
        raise UpstreamLoginFailed("the upstream connection broke during the login") from None


async def _receive_exactly(stream, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = await stream.receive_some(n - len(data))
        if not chunk:
            raise OSError("the upstream closed the connection")
        data += chunk
    return data
