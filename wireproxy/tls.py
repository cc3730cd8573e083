"""TLS towards clients on a listener: the server context from a certificate and key file, with
modern defaults, reloadable (SIGHUP) without dropping the connections already open.

    tls = ServerTLS(cert_file, key_file)      # TLSConfigError (one clear line) if unusable
    stream = trio.SSLStream(stream, tls.context, server_side=True)
    tls.reload()                              # on SIGHUP: a broken new pair keeps the old one
"""

from __future__ import annotations

import ssl
from pathlib import Path

from .telemetry.logs import log


class TLSConfigError(Exception):
    """A certificate or key that cannot be loaded; the message names the files, never key bytes."""


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)      # the ssl module's secure cipher defaults
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(str(cert_file), str(key_file))
    except FileNotFoundError as exc:
        raise TLSConfigError(f"tls: {exc.filename}: no such file") from None
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or "unusable"
        raise TLSConfigError(f"tls: cannot load certificate {cert_file} with key {key_file}: {reason}") from None
    return context


class ServerTLS:
    def __init__(self, cert_file: Path, key_file: Path):
        self.cert_file, self.key_file = Path(cert_file), Path(key_file)
        self.context = server_context(self.cert_file, self.key_file)

    def reload(self) -> bool:
        """Load the files again; new handshakes use the new pair. -> whether it loaded."""
        try:
            self.context = server_context(self.cert_file, self.key_file)
        except TLSConfigError as exc:
            log("tls.reload_failed", level="error", error=str(exc), cert=str(self.cert_file))
            return False
        log("tls.reloaded", cert=str(self.cert_file))
        return True
