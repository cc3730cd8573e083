"""PostgreSQL protocol 3.0, sans-I/O: bytes in, typed messages out; messages in, bytes out.

Nothing here does I/O or imports trio: the proxy feeds bytes in and writes what comes out.
"""

from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .framing import DEFAULT_MAX_MESSAGE_SIZE, RAW, STARTUP, Framer
from .messages import *  # noqa: F401,F403 - the message types are this package's vocabulary
from .messages import BACKEND, FRONTEND, Field, Message, decode_backend, decode_frontend
from .startup import (CancelRequest, GSSENCRequest, SSLRequest, StartupMessage,
                      decode_startup)

__all__ = [
    "BACKEND", "DEFAULT_MAX_MESSAGE_SIZE", "FRONTEND", "RAW", "STARTUP", "CancelRequest",
    "Field", "Framer", "GSSENCRequest", "LocalProtocolError", "Message", "ProtocolError",
    "RemoteProtocolError", "SSLRequest", "StartupMessage", "decode_backend", "decode_frontend",
    "decode_startup",
] + [m.__name__ for m in {**FRONTEND, **BACKEND}.values()] + [
    "SASLInitialResponse", "SASLResponse", "Authentication"]
