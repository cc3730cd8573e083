"""Every protocol 3.0 message: round trip, three ways through the framer, truncated and lying bodies.

A round trip is: encode -> frame -> decode gives an equal message, and re-encoding the decoded
message gives the very same bytes. Every parser case is fed three ways (STYLE.md): the whole
buffer, one byte at a time, and followed by bytes of a next message that must be left alone.
Lying inputs raise the codec's own RemoteProtocolError, never IndexError, struct.error,
UnicodeError or ValueError.
"""

from __future__ import annotations

import pytest

from protocols.postgres import (BACKEND, FRONTEND, Authentication, BackendKeyData, Bind,
                                BindComplete, Close, CloseComplete, CommandComplete, CopyBothResponse,
                                CopyData, CopyDone, CopyFail, CopyInResponse, CopyOutResponse,
                                DataRow, Describe, EmptyQueryResponse, ErrorResponse, Execute, Field,
                                Flush, Framer, FunctionCall, FunctionCallResponse, LocalProtocolError,
                                NegotiateProtocolVersion, NoData, NoticeResponse, NotificationResponse,
                                ParameterDescription, ParameterStatus, Parse, ParseComplete,
                                PasswordMessage, PortalSuspended, Query, ReadyForQuery,
                                RemoteProtocolError, RowDescription, SASLInitialResponse, SASLResponse,
                                Sync, Terminate, decode_backend, decode_frontend)
from protocols.postgres.wire import INT16, INT32, UINT16, UINT32, frame

# ------------------------------------------------------------------------------ the samples --

FRONTEND_SAMPLES = [
    Query("SELECT 1"),
    Query(""),
    Query("SELECT 'héllo wörld ✓', E'\\x01'"),
    Parse("", "SELECT $1::int + $2"),
    Parse("stmt_1", "INSERT INTO t VALUES ($1, $2, $3)", (23, 25, 0)),
    Bind("", "", (), (), ()),
    Bind("portal", "stmt_1", (0, 1), (b"42", None, b"\x00\xff binary", b""), (1, 0, 1)),
    Describe("S", "stmt_1"),
    Describe("P", ""),
    Execute("", 0),
    Execute("portal", 100),
    Sync(),
    Flush(),
    Close("S", "stmt_1"),
    Close("P", "portal"),
    CopyData(b"1\tone\n2\ttwo\n"),
    CopyData(b""),
    CopyDone(),
    CopyFail("client gave up"),
    FunctionCall(1598, (1,), (b"\x00\x00\x00\x01", None), 1),
    FunctionCall(2, (), (), 0),
    Terminate(),
    PasswordMessage(b"md5" + b"0123456789abcdef" * 2 + b"\0"),
    PasswordMessage(b"cleartext secret\0"),
]

# 'p' messages whose meaning depends on the authentication request they answer.
SASL_SAMPLES = [
    SASLInitialResponse("SCRAM-SHA-256", b"n,,n=,r=rOprNGfwEbeRWgbNEkqO"),
    SASLInitialResponse("SCRAM-SHA-256-PLUS", None),
    SASLInitialResponse("SCRAM-SHA-256", b""),
    SASLResponse(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
    SASLResponse(b""),
]

BACKEND_SAMPLES = [
    Authentication(0),                                     # AuthenticationOk
    Authentication(3),                                     # CleartextPassword
    Authentication(5, b"\x01\x02\x03\x04"),                # MD5Password with salt
    Authentication.sasl(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]),
    Authentication(11, b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
    Authentication(12, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
    Authentication(7),                                     # GSS
    Authentication(8, b"\x60\x81 gss token"),              # GSSContinue
    Authentication(9),                                     # SSPI
    ParameterStatus("server_version", "16.2"),
    ParameterStatus("application_name", ""),
    BackendKeyData(12345, b"\xde\xad\xbe\xef"),            # protocol 3.0: 4-byte secret
    BackendKeyData(4_000_000_000, bytes(range(32))),       # protocol 3.2: longer secrets
    BackendKeyData(1, bytes(256)),                         # the longest allowed
    NegotiateProtocolVersion(0),
    NegotiateProtocolVersion(0, ("_pq_.compression", "_pq_.something_else")),
    RowDescription(()),
    RowDescription((
        Field("id", 16384, 1, 23, 4, -1, 0),
        Field("name", 16384, 2, 1043, -1, 68, 0),
        Field("payload", 16384, 3, 17, -1, -1, 1),
        Field("", 0, 0, 25, -1, -1, 0),
        Field("ümlaut ✓", 4_000_000_000, 32767, 4_294_967_295, -32768, -2_147_483_648, 1),
    )),
    DataRow.from_values([b"1", None, b"", b"\x00\xff", None]),
    DataRow.from_values([]),
    DataRow.from_values([None]),
    CommandComplete("SELECT 3"),
    CommandComplete("INSERT 0 1"),
    EmptyQueryResponse(),
    ErrorResponse.make("42P01", 'relation "nope" does not exist', P="15", F="parse_relation.c",
                       L="1449", R="parserOpenTable"),
    ErrorResponse({"S": "FATAL", "V": "FATAL", "C": "28P01", "M": "password authentication failed for user \"bob\"",
                   "D": "détail", "H": "hint", "W": "PL/pgSQL function f() line 3", "s": "public",
                   "t": "tbl", "c": "col", "d": "dom", "n": "constraint", "q": "internal query",
                   "p": "3"}),
    ErrorResponse({}),
    NoticeResponse.make("01000", "just so you know", D="detail"),
    NoticeResponse({"S": "WARNING", "C": "01000", "M": "careful"}),
    NotificationResponse(4242, "channel", "payload ✓"),
    NotificationResponse(4_294_967_295, "c", ""),
    ParseComplete(),
    BindComplete(),
    CloseComplete(),
    NoData(),
    ParameterDescription(()),
    ParameterDescription((23, 25, 4_294_967_295)),
    ParameterDescription(tuple(range(1000, 1000 + 2000))),
    ParameterDescription(tuple(range(32767))),             # the most a signed int16 count carries
    PortalSuspended(),
    ReadyForQuery("I"),
    ReadyForQuery("T"),
    ReadyForQuery("E"),
    CopyInResponse(0, (0, 0, 0)),
    CopyInResponse(1, ()),
    CopyOutResponse(0, (0,)),
    CopyOutResponse(1, (1, 1)),
    CopyBothResponse(0, ()),
    CopyBothResponse(1, (1,)),
    FunctionCallResponse(b"\x00\x00\x00\x2a"),
    FunctionCallResponse(None),
    FunctionCallResponse(b""),
    CopyData(b"\x00" * 100),
    CopyDone(),
]

ALL_SAMPLES = FRONTEND_SAMPLES + SASL_SAMPLES + BACKEND_SAMPLES


def sample_id(message) -> str:
    text = repr(message)
    return text if len(text) <= 60 else text[:57] + "..."


def decode_as(message_type, whole: bytes):
    return message_type.decode(whole[5:])


def test_every_message_type_has_a_sample():
    sampled = {type(m) for m in ALL_SAMPLES}
    missing = {cls.__name__ for cls in {*FRONTEND.values(), *BACKEND.values()}} - {c.__name__ for c in sampled}
    assert not missing
    assert {SASLInitialResponse, SASLResponse} <= sampled


# ---------------------------------------------------------------------------- round trips --

@pytest.mark.parametrize("message", ALL_SAMPLES, ids=sample_id)
def test_round_trip(message):
    encoded = message.encode()
    assert encoded[:1] == message.TYPE
    assert int.from_bytes(encoded[1:5], "big") == len(encoded) - 1
    items = Framer().feed(encoded)
    assert items == [(message.TYPE[0], encoded)]
    decoded = decode_as(type(message), items[0][1])
    assert decoded == message
    assert type(decoded) is type(message)
    assert decoded.encode() == encoded


@pytest.mark.parametrize("message", FRONTEND_SAMPLES + SASL_SAMPLES, ids=sample_id)
def test_frontend_dispatch(message):
    encoded = message.encode()
    decoded = decode_frontend(encoded[0], encoded[5:])
    if isinstance(message, (SASLInitialResponse, SASLResponse)):
        # The dispatcher cannot know which 'p' it is; the bytes still round-trip.
        assert isinstance(decoded, PasswordMessage)
    else:
        assert decoded == message
    assert decoded.encode() == encoded


@pytest.mark.parametrize("message", BACKEND_SAMPLES, ids=sample_id)
def test_backend_dispatch(message):
    encoded = message.encode()
    decoded = decode_backend(encoded[0], encoded[5:])
    assert decoded == message
    assert decoded.encode() == encoded


# ----------------------------------------------------------- three ways through the framer --

def frame_whole(data: bytes, framer: Framer) -> list[tuple[int, bytes]]:
    return framer.feed(data)


def frame_bytewise(data: bytes, framer: Framer) -> list[tuple[int, bytes]]:
    out = []
    for i in range(len(data)):
        out += framer.feed(data[i:i + 1])
    return out


# The trailing bytes: a whole header and part of the body of a next message.
TRAILING = Query("SELECT 'next'").encode()[:9]


@pytest.mark.parametrize("message", ALL_SAMPLES, ids=sample_id)
@pytest.mark.parametrize("way", ["whole", "bytewise", "trailing"])
def test_three_ways(message, way):
    encoded = message.encode()
    if len(encoded) > 20_000 and way == "bytewise":
        encoded_feed = [encoded[i:i + 7] for i in range(0, len(encoded), 7)]   # keep it fast
    else:
        encoded_feed = None
    framer = Framer()
    if way == "whole":
        items = frame_whole(encoded, framer)
    elif way == "bytewise":
        if encoded_feed is None:
            items = frame_bytewise(encoded, framer)
        else:
            items = [item for chunk in encoded_feed for item in framer.feed(chunk)]
    else:
        items = framer.feed(encoded + TRAILING)
        assert framer.buffered == len(TRAILING)
        assert not framer.at_boundary
        # The trailing bytes were left alone: completing them yields the next message intact.
        rest = Query("SELECT 'next'").encode()[len(TRAILING):]
        assert framer.feed(rest) == [(ord("Q"), TRAILING + rest)]
    assert items == [(message.TYPE[0], encoded)]
    assert decode_as(type(message), items[0][1]) == message
    assert framer.at_boundary and framer.buffered == 0


def test_a_stream_of_every_message_three_ways():
    stream = b"".join(m.encode() for m in ALL_SAMPLES)
    expected = [(m.TYPE[0], m.encode()) for m in ALL_SAMPLES]
    assert Framer().feed(stream) == expected
    framer = Framer()
    assert [item for i in range(0, len(stream), 1) for item in framer.feed(stream[i:i + 1])] == expected
    framer = Framer()
    assert framer.feed(stream + TRAILING) == expected
    assert framer.buffered == len(TRAILING)


# ----------------------------------------------------------------- truncated bodies --------

# Types whose body is opaque (any bytes are a valid value), so a prefix may decode.
OPAQUE = (CopyData, PasswordMessage, SASLResponse, DataRow)


def body_of(message) -> bytes:
    return message.encode()[5:]


def cuts(body: bytes) -> list[int]:
    """Every strict prefix length; for big bodies a spread of them and the last few."""
    if len(body) <= 2000:
        return list(range(len(body)))
    return sorted({*range(0, len(body), 997), *range(len(body) - 64, len(body))})


@pytest.mark.parametrize("message", [m for m in ALL_SAMPLES if body_of(m)], ids=sample_id)
def test_every_truncation_decodes_or_raises_the_codec_error(message):
    body = body_of(message)
    for cut in cuts(body):
        try:
            decoded = type(message).decode(body[:cut])
            if isinstance(decoded, DataRow):
                decoded.values
        except RemoteProtocolError:
            continue
        assert isinstance(message, OPAQUE) or type(message) in (Authentication, BackendKeyData), (cut, decoded)


STRUCTURED = [m for m in ALL_SAMPLES if body_of(m) and not isinstance(m, OPAQUE)
              and not (isinstance(m, Authentication) and m.code not in (0, 3, 5))
              and not (isinstance(m, BackendKeyData) and len(m.secret) > 4)]


@pytest.mark.parametrize("message", STRUCTURED, ids=sample_id)
def test_every_strict_prefix_of_a_structured_body_is_refused(message):
    body = body_of(message)
    for cut in cuts(body):
        with pytest.raises(RemoteProtocolError):
            type(message).decode(body[:cut])


@pytest.mark.parametrize("message", [m for m in ALL_SAMPLES if isinstance(m, DataRow)], ids=sample_id)
def test_truncated_datarow_values_raise(message):
    body = body_of(message)
    for cut in range(len(body)):
        row = DataRow.decode(body[:cut])       # lazy: decoding the frame never fails
        with pytest.raises(RemoteProtocolError):
            row.values


FIXED_STRUCTURE = [m for m in ALL_SAMPLES
                   if not isinstance(m, (CopyData, PasswordMessage, SASLResponse, Authentication,
                                         BackendKeyData, DataRow))]


@pytest.mark.parametrize("message", FIXED_STRUCTURE, ids=sample_id)
def test_junk_after_a_complete_body_is_refused(message):
    with pytest.raises(RemoteProtocolError):
        type(message).decode(body_of(message) + b"\0junk")


def test_datarow_with_junk_after_its_values_is_refused():
    row = DataRow(body_of(DataRow.from_values([b"a"])) + b"junk")
    with pytest.raises(RemoteProtocolError, match="trailing"):
        row.values


# ------------------------------------------------------------------------ lying inputs ------

def test_datarow_is_lazy_and_keeps_its_bytes():
    body = INT16.pack(2) + INT32.pack(1) + b"x" + INT32.pack(-1)
    row = DataRow.decode(memoryview(body))
    assert row.body == body and isinstance(row.body, bytes)
    assert row.encode() == frame(b"D", body)
    assert row.values == (b"x", None)


@pytest.mark.parametrize("body, what", [
    (INT16.pack(1) + INT32.pack(100) + b"abc", "field length past the body"),
    (INT16.pack(2) + INT32.pack(3) + b"abc" + INT32.pack(5) + b"ab", "second field length past the body"),
    (INT16.pack(-1), "negative count"),
    (INT16.pack(-32768) + INT32.pack(1) + b"x", "most negative count"),
    (INT16.pack(3) + INT32.pack(1) + b"x", "count past the body"),
    (INT16.pack(1) + INT32.pack(-2), "negative field length other than NULL"),
    (INT16.pack(1) + INT32.pack(-2_147_483_648), "most negative field length"),
    (INT16.pack(1) + INT32.pack(2_147_483_647) + b"x", "huge field length"),
    (INT16.pack(1) + b"\x00\x00", "field length cut short"),
    (b"\x00", "count cut short"),
    (b"", "empty body"),
])
def test_lying_datarow(body, what):
    row = DataRow.decode(body)
    with pytest.raises(RemoteProtocolError):
        row.values


def bind_body(param_count: int, params: bytes, tail: bytes = INT16.pack(0)) -> bytes:
    return b"portal\0stmt\0" + INT16.pack(0) + INT16.pack(param_count) + params + tail


@pytest.mark.parametrize("body", [
    bind_body(3, INT32.pack(1) + b"x"),                             # says 3 params, carries 1
    bind_body(1, INT32.pack(50) + b"short"),                        # param length past the body
    bind_body(-1, b""),                                             # negative count
    bind_body(2, INT32.pack(-7) + b"" + INT32.pack(-1)),            # negative param length
    bind_body(1, INT32.pack(1) + b"x", INT16.pack(5) + INT16.pack(0)),   # result formats lie
    bind_body(1, INT32.pack(1) + b"x", INT16.pack(-3)),             # negative result-format count
    b"portal\0stmt\0" + INT16.pack(10) + INT16.pack(0),             # param-format count lies
    b"portal\0stmt",                                                # unterminated statement name
    b"",
], ids=lambda b: b.hex()[:40])
def test_lying_bind(body):
    with pytest.raises(RemoteProtocolError):
        Bind.decode(body)


@pytest.mark.parametrize("message_type, body", [
    (RowDescription, INT16.pack(2) + b"a\0" + bytes(18)),                        # 2 fields, 1 present
    (RowDescription, INT16.pack(1000) + b"a\0" + bytes(18)),                     # count far too big
    (RowDescription, INT16.pack(-1)),
    (RowDescription, INT16.pack(1) + b"a\0" + bytes(17)),                        # attributes cut short
    (RowDescription, INT16.pack(1) + b"a" * 19),                                 # a name without end
    (RowDescription, INT16.pack(1) + b"\xff" * 19),                              # a name without end
    (Parse, b"\0SELECT $1\0" + INT16.pack(2) + UINT32.pack(23)),                 # 2 types, 1 present
    (Parse, b"\0SELECT $1\0" + INT16.pack(-2)),
    (Parse, b"\0SELECT $1"),
    (ParameterDescription, UINT16.pack(3) + UINT32.pack(23)),
    (ParameterDescription, UINT16.pack(65535)),
    (ParameterDescription, b"\x00"),
    (FunctionCall, UINT32.pack(1) + INT16.pack(0) + INT16.pack(2) + INT32.pack(-1) + INT16.pack(0)),
    (FunctionCall, UINT32.pack(1) + INT16.pack(-1)),
    (FunctionCall, UINT32.pack(1) + INT16.pack(0) + INT16.pack(1) + INT32.pack(9) + b"abc" + INT16.pack(0)),
    (FunctionCallResponse, INT32.pack(10) + b"abc"),
    (FunctionCallResponse, INT32.pack(-5)),
    (CopyInResponse, b"\x00" + INT16.pack(4) + INT16.pack(0)),
    (CopyOutResponse, b"\x02" + INT16.pack(0)),                                  # format 2 does not exist
    (CopyBothResponse, b"\x00" + INT16.pack(-1)),
    (NegotiateProtocolVersion, INT32.pack(0) + INT32.pack(2) + b"one\0"),
    (NegotiateProtocolVersion, INT32.pack(0) + INT32.pack(-1)),
    (NegotiateProtocolVersion, INT32.pack(0) + INT32.pack(2_000_000_000)),
    (Authentication, b"\x00\x00\x00"),
    (Authentication, INT32.pack(0) + b"x"),                                      # Ok with a body
    (Authentication, INT32.pack(3) + b"x"),                                      # Cleartext with a body
    (Authentication, INT32.pack(5) + b"\x01\x02\x03"),                           # MD5 salt too short
    (Authentication, INT32.pack(5) + b"\x01\x02\x03\x04\x05"),                   # MD5 salt too long
    (Authentication, INT32.pack(10) + b"SCRAM-SHA-256"),                         # unterminated list
    (Authentication, INT32.pack(10)),
    (BackendKeyData, UINT32.pack(1) + b"\x01\x02\x03"),                          # secret too short
    (BackendKeyData, UINT32.pack(1) + bytes(257)),                               # secret too long
    (BackendKeyData, b"\x00\x00"),
    (ReadyForQuery, b""),
    (ReadyForQuery, b"X"),
    (ReadyForQuery, b"II"),
    (Describe, b"X" + b"name\0"),
    (Describe, b""),
    (Close, b"Q" + b"name\0"),
    (Execute, b"portal\0" + b"\x00\x00"),
    (Execute, b"portal"),
    (ErrorResponse, b"SERROR\0CXX000\0"),                                        # no terminating zero
    (ErrorResponse, b"SERROR"),
    (NoticeResponse, b""),
    (NotificationResponse, UINT32.pack(1) + b"chan\0"),
    (ParameterStatus, b"name\0"),
    (CommandComplete, b"SELECT 1"),
    (Query, b"SELECT 1"),
    (Query, b""),
    (CopyFail, b"why"),
    (SASLInitialResponse, b"SCRAM-SHA-256\0" + INT32.pack(10) + b"short"),
    (SASLInitialResponse, b"SCRAM-SHA-256\0" + INT32.pack(-3)),
    (SASLInitialResponse, b"SCRAM-SHA-256"),
    (Sync, b"x"),
    (Flush, b"\0"),
    (Terminate, b"bye"),
    (CopyDone, b"x"),
    (EmptyQueryResponse, b"x"),
    (ParseComplete, b"x"),
    (BindComplete, b"x"),
    (CloseComplete, b"x"),
    (NoData, b"x"),
    (PortalSuspended, b"x"),
], ids=lambda v: v.__name__ if isinstance(v, type) else v.hex()[:32])
def test_lying_bodies_raise_the_codec_error(message_type, body):
    with pytest.raises(RemoteProtocolError) as info:
        message_type.decode(body)
    assert info.value.sqlstate == "08P01"


@pytest.mark.parametrize("decode", [decode_frontend, decode_backend])
def test_unknown_type_codes_are_refused(decode):
    known = FRONTEND if decode is decode_frontend else BACKEND
    for code in range(256):
        if code not in known:
            with pytest.raises(RemoteProtocolError, match="invalid"):
                decode(code, b"")


def test_strings_that_are_not_utf8_round_trip_without_unicode_errors():
    for message_type, body in [
        (Query, b"SELECT '\xff\xfe caf\xe9'\0"),
        (CommandComplete, b"\xc3\0"),
        (ParameterStatus, b"client_encoding\0LATIN1 \xe9\0"),
        (ErrorResponse, b"SERROR\0M\xe9chec\0\0"),
        (NotificationResponse, UINT32.pack(7) + b"\x80\0\xed\xa0\x80\0"),   # an encoded surrogate
        (CopyFail, b"\xff\0"),
    ]:
        decoded = message_type.decode(body)
        assert decoded.encode()[5:] == body


def test_password_message_helpers():
    assert PasswordMessage(b"secret\0").password == "secret"
    with pytest.raises(RemoteProtocolError):
        PasswordMessage(b"no terminator").password
    with pytest.raises(RemoteProtocolError):
        PasswordMessage(b"a\0b\0").password


def test_message_accessors():
    assert Authentication.sasl(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]).mechanisms == [
        "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
    assert CommandComplete("SELECT 5").rows == 5
    assert CommandComplete("INSERT 0 7").rows == 7
    assert CommandComplete("COPY 1000000").rows == 1_000_000
    assert CommandComplete("BEGIN").rows is None
    assert CommandComplete("").rows is None
    error = ErrorResponse.make("42501", "nope")
    assert (error.sqlstate, error.message, error.severity) == ("42501", "nope", "ERROR")
    assert ErrorResponse({"S": "FEHLER"}).severity == "FEHLER"        # localized S only
    notice = NoticeResponse.make("01000", "hm")
    assert notice.severity == "NOTICE" and notice.TYPE == b"N"
    assert ErrorResponse.make("X", "m") != NoticeResponse.make("X", "m", severity="ERROR")
    assert DataRow.from_values([b"a", None]).values == (b"a", None)


def test_encoding_a_nul_in_a_string_is_a_local_error():
    for message in (Query("a\0b"), Parse("s\0", "x"), ParameterStatus("a", "b\0"),
                    ErrorResponse.make("XX000", "nul \0 inside")):
        with pytest.raises(LocalProtocolError):
            message.encode()


# --------------------------------------------------------------------- bugs, shown ------------

def test_parse_with_more_than_32767_parameters():
    types = (23,) * 40_000
    body = b"\0INSERT ...\0" + UINT16.pack(len(types)) + b"".join(UINT32.pack(t) for t in types)
    decoded = Parse.decode(body)
    assert decoded == Parse("", "INSERT ...", types)
    assert decoded.encode() == frame(b"P", body)


def test_bind_with_more_than_32767_parameters():
    params = (b"1",) * 40_000
    body = (b"\0\0" + INT16.pack(0) + UINT16.pack(len(params))
            + b"".join(INT32.pack(1) + p for p in params) + INT16.pack(0))
    decoded = Bind.decode(body)
    assert decoded == Bind("", "", (), params, ())
    assert decoded.encode() == frame(b"B", body)


def test_parameter_description_with_65535_oids_round_trips():
    message = ParameterDescription((25,) * 65535)
    assert ParameterDescription.decode(message.encode()[5:]) == message


def test_sasl_mechanisms_that_are_not_utf8():
    message = Authentication.decode(INT32.pack(10) + b"SCRAM-\xff\0\0")
    try:
        message.mechanisms
    except RemoteProtocolError:
        pass


def test_truncated_sasl_mechanism_list_is_refused_inside_a_name():
    body = body_of(Authentication.sasl(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]))
    for cut in range(len(body)):
        if not body[:cut].endswith(b"\0") or cut <= 4:
            with pytest.raises(RemoteProtocolError):
                Authentication.decode(body[:cut])


def test_sasl_mechanism_list_without_its_terminator_is_refused():
    with pytest.raises(RemoteProtocolError):
        Authentication.decode(INT32.pack(10) + b"SCRAM-SHA-256\0")


def test_command_tag_with_a_superscript_digit():
    assert CommandComplete.decode("SELECT ²".encode() + b"\0").rows is None


def test_repr_of_a_lying_datarow_does_not_raise():
    assert "DataRow" in repr(DataRow(INT16.pack(5)))
