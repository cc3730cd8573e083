"""The plain path: a session with nothing to judge, mask or record only relays.

Messages are framed (so malformed input is still refused, and DataRows pass as raw runs) and
forwarded as they came. The conversation keeps only the sync points (Query, FunctionCall, Sync)
and COPY's ends, enough to know when the server still owes answers: a client that vanishes then
gets its running query cancelled.
"""

from __future__ import annotations

from protocols.postgres import RAW, ProtocolError, RemoteProtocolError

from .protocol import (BIND, CLOSE, COPY_DONE, COPY_FAIL, COPY_IN, DESCRIBE, ERROR, EXECUTE, FLUSH,
                       FUNCTION_CALL, KEY_DATA, PARSE, PASSWORD, QUERY, READY, SYNC, TERMINATE, Phase,
                       Wait)

_FORWARDED = frozenset({PARSE, BIND, DESCRIBE, EXECUTE, CLOSE, FLUSH, PASSWORD})
_CHECKED = frozenset({DESCRIBE, CLOSE, EXECUTE})


def well_formed(code: int, message: bytes) -> bool:
    """Cheap shape checks for the messages forwarded without decoding (Describe, Close,
    Execute; Bind is checked where it is read), so the server never sees what we would refuse."""
    if code == EXECUTE:
        return message.find(b"\0", 5) == len(message) - 5
    if code == BIND:
        return True
    return message[5:6] in (b"S", b"P") and message.find(b"\0", 6) == len(message) - 1


def ready_status(message: bytes) -> str:
    if len(message) != 6 or message[5] not in b"ITE":
        raise RemoteProtocolError(f"ReadyForQuery: bad body {message[5:]!r}")
    return chr(message[5])


def key_data(message: bytes) -> tuple[int, bytes]:
    body = message[5:]
    return int.from_bytes(body[:4], "big"), bytes(body[4:])


def is_fatal(message: bytes) -> bool:
    return b"VFATAL\0" in message or b"VPANIC\0" in message


class PlainPath:
    def __init__(self, relay):
        self.relay = relay
        self.conversation = relay.conversation

    def from_client(self, items: list[tuple[int, bytes]]) -> None:
        out = self.relay.to_server
        conversation = self.conversation
        for code, message in items:
            if code == RAW:
                out.append(message)
            elif code in _FORWARDED:
                if code in _CHECKED and not well_formed(code, message):
                    raise RemoteProtocolError(f"malformed message {chr(code)!r}")
                out.append(message)
            elif code == SYNC:
                conversation.sync()
                out.append(message)
            elif code == QUERY or code == FUNCTION_CALL:
                conversation.expect(Wait.QUERY if code == QUERY else Wait.FUNCTION)
                out.append(message)
            elif code == COPY_DONE or code == COPY_FAIL:
                conversation.copy_end()
                out.append(message)
            elif code == TERMINATE:
                out.append(message)
                self.relay.terminated()
                return
            else:
                raise ProtocolError(f"invalid frontend message type {chr(code)!r}")

    def from_server(self, items: list[tuple[int, bytes]]) -> None:
        relay = self.relay
        out = relay.to_client
        for code, message in items:
            if code == READY:
                self.conversation.ready(ready_status(message))
                out.append(message)
                if relay.phase is Phase.AUTH:
                    relay.became_ready()
                continue
            if code == ERROR:
                self.conversation.error()
                if is_fatal(message):
                    relay.server_said_fatal = True
            elif code == COPY_IN:
                self.conversation.copy_started()
            elif code == KEY_DATA:
                relay.backend_key = key_data(message)
            out.append(message)
