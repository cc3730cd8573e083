"""The codec's two errors, as in h11: the peer misbehaved, or the caller misused the API.

Each carries the SQLSTATE that fits when the proxy reports it: 08P01 (protocol_violation) for
bytes that break the protocol, including a message past the size cap (PostgreSQL reports its
own "invalid message length" the same way), 0A000 and 28000 for refused startup packets.
"""


class ProtocolError(Exception):
    def __init__(self, message: str, sqlstate: str = "08P01"):
        super().__init__(message)
        self.sqlstate = sqlstate


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that are not valid protocol 3.0. Raised only when reading."""


class LocalProtocolError(ProtocolError):
    """We were asked to encode something the protocol cannot carry."""
