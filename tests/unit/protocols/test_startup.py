"""Startup-phase packets: StartupMessage, SSLRequest, GSSENCRequest, CancelRequest.

Each round-trips through a startup-mode Framer and decode_startup, three ways; bad packets raise
the codec's own error with the SQLSTATE PostgreSQL itself would report.
"""

from __future__ import annotations

import pytest

from protocols.postgres import (STARTUP, CancelRequest, Framer, GSSENCRequest, RemoteProtocolError,
                                SSLRequest, StartupMessage, decode_startup)
from protocols.postgres.startup import (CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, PROTOCOL_3_0,
                                        SSL_REQUEST_CODE)
from protocols.postgres.wire import INT32, UINT32

SAMPLES = [
    StartupMessage({"user": "alice"}),
    StartupMessage({"user": "alice", "database": "shop", "application_name": "psql",
                    "client_encoding": "UTF8", "options": "-c search_path=public",
                    "replication": "false"}),
    StartupMessage({"user": "ünïcode ✓", "database": ""}),
    StartupMessage({"user": "bob", "_pq_.some_extension": "on"}, version=(3 << 16) | 2),
    SSLRequest(),
    GSSENCRequest(),
    CancelRequest(4242, b"\x01\x02\x03\x04"),                 # protocol 3.0
    CancelRequest(4_294_967_295, bytes(range(32))),           # 3.2: longer secrets
    CancelRequest(1, bytes(256)),
]


def decode_packet(packet: bytes):
    assert int.from_bytes(packet[:4], "big") == len(packet)
    return decode_startup(packet[4:])


def frame_startup(chunks) -> tuple[list[tuple[int, bytes]], Framer]:
    framer = Framer(startup=True)
    out = []
    for chunk in chunks:
        items = framer.feed(chunk)
        while items:
            out += items
            items = framer.drain()
    return out, framer


@pytest.mark.parametrize("message", SAMPLES, ids=repr)
def test_round_trip(message):
    packet = message.encode()
    decoded = decode_packet(packet)
    assert decoded == message
    assert type(decoded) is type(message)
    assert decoded.encode() == packet


@pytest.mark.parametrize("message", SAMPLES, ids=repr)
@pytest.mark.parametrize("way", ["whole", "bytewise", "trailing"])
def test_three_ways(message, way):
    packet = message.encode()
    trailing = StartupMessage({"user": "next"}).encode()[:6]
    if way == "whole":
        items, framer = frame_startup([packet])
    elif way == "bytewise":
        items, framer = frame_startup(packet[i:i + 1] for i in range(len(packet)))
    else:
        items, framer = frame_startup([packet + trailing])
        assert framer.buffered == len(trailing) and not framer.at_boundary
    assert items == [(STARTUP, packet)]
    assert decode_packet(items[0][1]) == message


def test_the_usual_libpq_sequence_in_one_chunk():
    packets = [GSSENCRequest().encode(), SSLRequest().encode(), StartupMessage({"user": "u"}).encode()]
    items, framer = frame_startup([b"".join(packets)])
    assert [p for _, p in items] == packets
    assert framer.at_boundary


def test_startup_message_accessors():
    message = StartupMessage({"user": "alice"})
    assert message.user == "alice" and message.database == "alice"     # database defaults to user
    assert StartupMessage({"user": "a", "database": "b"}).database == "b"
    assert StartupMessage({"user": "a", "database": ""}).database == "a"
    assert message.version == PROTOCOL_3_0 == 196608


def test_request_codes_are_the_documented_ones():
    assert SSLRequest().encode() == INT32.pack(8) + INT32.pack(80877103) == INT32.pack(8) + INT32.pack(SSL_REQUEST_CODE)
    assert GSSENCRequest().encode() == INT32.pack(8) + INT32.pack(GSSENC_REQUEST_CODE) == bytes.fromhex("0000000804d21630")
    assert CancelRequest(1, b"abcd").encode() == INT32.pack(16) + INT32.pack(CANCEL_REQUEST_CODE) + UINT32.pack(1) + b"abcd"
    assert CANCEL_REQUEST_CODE == 80877102


# ------------------------------------------------------------------- refusals ----------------

def startup_body(version: int, params: bytes) -> bytes:
    return INT32.pack(version) + params


@pytest.mark.parametrize("version", [2 << 16, (2 << 16) | 1, 1 << 16, 4 << 16, 0, 1235 << 16 | 1, -1])
def test_protocol_versions_other_than_3_are_refused_clearly(version):
    with pytest.raises(RemoteProtocolError, match="unsupported frontend protocol") as info:
        decode_startup(startup_body(version, b"user\0alice\0\0"))
    assert info.value.sqlstate == "0A000"


def test_protocol_2_message_names_the_versions():
    with pytest.raises(RemoteProtocolError) as info:
        decode_startup(startup_body(2 << 16, b"user\0alice\0\0"))
    assert "2.0" in str(info.value) and "3.0" in str(info.value)


@pytest.mark.parametrize("params", [b"\0", b"database\0db\0\0", b"application_name\0x\0\0"])
def test_startup_message_without_user_is_refused(params):
    with pytest.raises(RemoteProtocolError, match="no PostgreSQL user name") as info:
        decode_startup(startup_body(PROTOCOL_3_0, params))
    assert info.value.sqlstate == "28000"


@pytest.mark.parametrize("body", [
    b"",
    b"\x00\x03",
    b"\x00\x03\x00",
    startup_body(PROTOCOL_3_0, b""),                          # no terminator at all
    startup_body(PROTOCOL_3_0, b"user\0alice\0"),             # list not terminated
    startup_body(PROTOCOL_3_0, b"user\0alice"),               # value not terminated
    startup_body(PROTOCOL_3_0, b"user\0"),                    # name without a value
    startup_body(PROTOCOL_3_0, b"user\0alice\0\0junk"),       # bytes after the terminator
    INT32.pack(SSL_REQUEST_CODE) + b"\0",                     # SSLRequest with a body
    INT32.pack(GSSENC_REQUEST_CODE) + b"abcd",
    INT32.pack(CANCEL_REQUEST_CODE),                          # CancelRequest without a key
    INT32.pack(CANCEL_REQUEST_CODE) + UINT32.pack(1),
    INT32.pack(CANCEL_REQUEST_CODE) + UINT32.pack(1) + b"abc",           # secret too short
    INT32.pack(CANCEL_REQUEST_CODE) + UINT32.pack(1) + bytes(257),       # secret too long
    INT32.pack(CANCEL_REQUEST_CODE) + b"\x00\x00",
], ids=lambda b: b.hex()[:40] or "empty")
def test_bad_startup_packets_raise_the_codec_error(body):
    with pytest.raises(RemoteProtocolError) as info:
        decode_startup(body)
    assert info.value.sqlstate == "08P01"


def test_packets_too_short_or_too_long_for_the_framer():
    for length in (0, 3, 7):
        with pytest.raises(RemoteProtocolError, match="startup packet"):
            Framer(startup=True).feed(INT32.pack(length) + bytes(8))
    with pytest.raises(RemoteProtocolError, match="startup packet"):
        Framer(startup=True).feed(INT32.pack(10_005))
    # A startup packet that is too long is refused from its length, before any of it arrives.
    framer = Framer(startup=True)
    with pytest.raises(RemoteProtocolError):
        framer.feed(INT32.pack(1 << 30))


def test_every_truncation_of_a_startup_body_is_refused():
    body = StartupMessage({"user": "alice", "database": "db"}).encode()[4:]
    for cut in range(len(body)):
        with pytest.raises(RemoteProtocolError):
            decode_startup(body[:cut])


def test_strings_that_are_not_utf8_survive():
    body = startup_body(PROTOCOL_3_0, b"user\0caf\xe9\0\0")
    message = decode_startup(body)
    assert message.encode()[4:] == body


def test_a_typed_message_sent_in_place_of_a_startup_packet_is_refused():
    # 'Q' + length reads as a startup length of about 1.4 GB: refused from the header alone.
    with pytest.raises(RemoteProtocolError):
        Framer(startup=True).feed(b"Q\0\0\0\x0dSELECT 1\0")
