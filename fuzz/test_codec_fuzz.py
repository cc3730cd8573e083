"""Property tests for the Postgres codec and the relay core.

1. Any split of a valid stream (generated messages, both directions and the startup phase) into
   chunks, including one byte at a time, frames and decodes to the same messages.
2. h11's fuzz rule: bytes fed to a Framer and decoded either decode or raise the codec's own
   RemoteProtocolError; nothing else, ever. Same for the relay: whatever the peers send, it
   forwards or closes with a FATAL ErrorResponse; it never raises.

CI runs a short slice (200 examples each); WIREPROXY_SLOW=1 runs the long soak.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from protocols.postgres import (BACKEND, FRONTEND, RAW, STARTUP, Authentication, BackendKeyData, Bind,
                                BindComplete, CancelRequest, Close, CloseComplete, CommandComplete,
                                CopyBothResponse, CopyData, CopyDone, CopyFail, CopyInResponse,
                                CopyOutResponse, DataRow, Describe, EmptyQueryResponse, ErrorResponse,
                                Execute, Field, Flush, Framer, FunctionCall, FunctionCallResponse,
                                GSSENCRequest, NegotiateProtocolVersion, NoData, NoticeResponse,
                                NotificationResponse, ParameterDescription, ParameterStatus, Parse,
                                ParseComplete, PasswordMessage, PortalSuspended, ProtocolError, Query,
                                ReadyForQuery, RemoteProtocolError, RowDescription, SASLInitialResponse,
                                SASLResponse, SSLRequest, StartupMessage, Sync, Terminate,
                                decode_backend, decode_frontend, decode_startup)
from protocols.postgres.wire import UINT32
from wireproxy.pg.relay import Phase, PgRelay
from wireproxy.policy import Action, Decision


def slow_examples(short: int, long: int = 20_000) -> int:
    """Hypothesis budget: a short slice in CI, the long run with WIREPROXY_SLOW=1."""
    return long if os.environ.get("WIREPROXY_SLOW") else short


FUZZ = settings(max_examples=slow_examples(200), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------------------- strategies ---

text = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=24)
name = st.text(st.characters(codec="utf-8", exclude_characters="\0"), min_size=1, max_size=12)
int16 = st.integers(-(1 << 15), (1 << 15) - 1)
int32 = st.integers(-(1 << 31), (1 << 31) - 1)
uint32 = st.integers(0, (1 << 32) - 1)
blob = st.binary(max_size=64)
nullable = st.none() | blob


def small_tuple(elements, max_size=6):
    return st.lists(elements, max_size=max_size).map(tuple)


frontend_messages = st.one_of(
    st.builds(Query, text),
    st.builds(Parse, text, text, small_tuple(uint32)),
    st.builds(Bind, text, text, small_tuple(int16), small_tuple(nullable), small_tuple(int16)),
    st.builds(Describe, st.sampled_from("SP"), text),
    st.builds(Close, st.sampled_from("SP"), text),
    st.builds(Execute, text, int32),
    st.builds(Sync), st.builds(Flush), st.builds(CopyDone),
    st.builds(CopyData, blob),
    st.builds(CopyFail, text),
    st.builds(FunctionCall, uint32, small_tuple(int16), small_tuple(nullable), int16),
    st.builds(PasswordMessage, blob),
    st.builds(SASLInitialResponse, text, nullable),
    st.builds(SASLResponse, blob),
)
# Terminate ends a session; it goes last in a frontend stream.

authentication = st.one_of(
    st.just(Authentication(0)), st.just(Authentication(3)),
    st.builds(Authentication, st.just(5), st.binary(min_size=4, max_size=4)),
    st.builds(Authentication.sasl, st.lists(name, min_size=1, max_size=3)),
    st.builds(Authentication, st.sampled_from([7, 8, 9, 11, 12]), blob),
)

fields = st.builds(Field, text, uint32, int16, uint32, int16, int32, int16)
error_fields = st.dictionaries(st.characters(min_codepoint=1, max_codepoint=255), text, max_size=8)

backend_messages = st.one_of(
    authentication,
    st.builds(ParameterStatus, text, text),
    st.builds(BackendKeyData, uint32, st.binary(min_size=4, max_size=64)),
    st.builds(NegotiateProtocolVersion, int32, small_tuple(text)),
    st.builds(RowDescription, small_tuple(fields)),
    st.builds(DataRow.from_values, st.lists(nullable, max_size=8)),
    st.builds(CommandComplete, text),
    st.builds(ErrorResponse, error_fields),
    st.builds(NoticeResponse, error_fields),
    st.builds(NotificationResponse, uint32, text, text),
    st.builds(ParameterDescription, small_tuple(uint32, 20)),
    st.builds(ReadyForQuery, st.sampled_from("ITE")),
    st.builds(CopyInResponse, st.sampled_from([0, 1]), small_tuple(int16)),
    st.builds(CopyOutResponse, st.sampled_from([0, 1]), small_tuple(int16)),
    st.builds(CopyBothResponse, st.sampled_from([0, 1]), small_tuple(int16)),
    st.builds(FunctionCallResponse, nullable),
    st.builds(CopyData, blob),
    st.sampled_from([EmptyQueryResponse(), ParseComplete(), BindComplete(), CloseComplete(), NoData(),
                     PortalSuspended(), CopyDone()]),
)

startup_packets = st.one_of(
    st.builds(lambda user, params, minor: StartupMessage({"user": user, **params}, (3 << 16) | minor),
              text, st.dictionaries(name, text, max_size=4), st.integers(0, 0xFFFF)),
    st.builds(SSLRequest), st.builds(GSSENCRequest),
    st.builds(CancelRequest, uint32, st.binary(min_size=4, max_size=256)),
)


def splits(data: bytes):
    """Strategy: `data` cut into chunks at arbitrary points (empty chunks included)."""
    return (st.lists(st.integers(0, len(data)), max_size=12)
            .map(lambda cuts: [data[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(data)])]))


def frame_chunks(framer: Framer, chunks) -> list[tuple[int, bytes]]:
    return [item for chunk in chunks for item in framer.feed(chunk)]


def check_decodes_to(items, messages, decode):
    assert [code for code, _ in items] == [m.TYPE[0] for m in messages]
    for (code, whole), message in zip(items, messages):
        assert type(message).decode(whole[5:]) == message
        assert type(message).decode(whole[5:]).encode() == whole
        assert decode(code, whole[5:]).encode() == whole      # the dispatcher agrees on the bytes


# ---------------------------------------------------------------- any split, same messages --

@pytest.mark.slow
@FUZZ
@given(st.lists(frontend_messages, max_size=12), st.booleans(), st.data())
def test_any_split_of_a_frontend_stream(messages, terminate, data):
    if terminate:
        messages = [*messages, Terminate()]
    stream = b"".join(m.encode() for m in messages)
    chunks = data.draw(splits(stream))
    framer = Framer()
    items = frame_chunks(framer, chunks)
    check_decodes_to(items, messages, decode_frontend)
    assert framer.at_boundary
    # With CopyData passing through raw, the bytes are the same and so are the typed messages.
    framer = Framer(passthrough={ord("d")})
    raw_items = frame_chunks(framer, chunks)
    assert b"".join(c for _, c in raw_items) == stream
    assert [c for c, _ in raw_items if c != RAW] == [m.TYPE[0] for m in messages if not isinstance(m, CopyData)]


@pytest.mark.slow
@FUZZ
@given(st.lists(backend_messages, max_size=12), st.data())
def test_any_split_of_a_backend_stream(messages, data):
    stream = b"".join(m.encode() for m in messages)
    chunks = data.draw(splits(stream))
    framer = Framer()
    check_decodes_to(frame_chunks(framer, chunks), messages, decode_backend)
    assert framer.at_boundary
    framer = Framer(passthrough={ord("D"), ord("d")})
    raw_items = frame_chunks(framer, chunks)
    assert b"".join(c for _, c in raw_items) == stream
    assert framer.at_boundary
    typed = [m for m in messages if not isinstance(m, (DataRow, CopyData))]
    check_decodes_to([i for i in raw_items if i[0] != RAW], typed, decode_backend)


@pytest.mark.slow
@settings(FUZZ, max_examples=slow_examples(50, 2_000))
@given(st.lists(frontend_messages | backend_messages, max_size=6))
def test_one_byte_at_a_time(messages):
    stream = b"".join(m.encode() for m in messages)
    framer = Framer()
    items = frame_chunks(framer, (stream[i:i + 1] for i in range(len(stream))))
    assert items == [(m.TYPE[0], m.encode()) for m in messages]
    for (_, whole), message in zip(items, messages):
        assert type(message).decode(whole[5:]) == message


@pytest.mark.slow
@FUZZ
@given(st.lists(startup_packets, min_size=1, max_size=5), st.data())
def test_any_split_of_startup_packets(packets, data):
    stream = b"".join(p.encode() for p in packets)
    chunks = data.draw(splits(stream) | st.just([stream[i:i + 1] for i in range(len(stream))]))
    framer = Framer(startup=True)
    out = []
    for chunk in chunks:
        items = framer.feed(chunk)
        assert len(items) <= 1
        while items:
            out += items
            items = framer.drain()
            assert len(items) <= 1
    assert out == [(STARTUP, p.encode()) for p in packets]
    assert [decode_startup(packet[4:]) for _, packet in out] == packets
    assert framer.at_boundary


# ------------------------------------------------------------ decode or RemoteProtocolError --

def decode_everything(framer: Framer, chunks, decode) -> None:
    """Frame and decode all of it; DataRows are decoded too (their values are lazy)."""
    for chunk in chunks:
        for code, whole in framer.feed(chunk):
            if code == RAW:
                continue
            message = decode(code, whole[5:])
            if isinstance(message, DataRow):
                message.values
            assert message.encode()[:1] == whole[:1]


def only_codec_errors(fn, *args) -> None:
    try:
        fn(*args)
    except RemoteProtocolError:
        pass


SMALL_CAP = 1 << 16


@pytest.mark.slow
@FUZZ
@given(st.binary(max_size=400), st.data(), st.sampled_from([decode_frontend, decode_backend]),
       st.sampled_from([frozenset(), frozenset({ord("D"), ord("d")})]))
@example(b"D\0\0\0\x0a\0\x01\0\0\0\x09ab", None, decode_backend, frozenset())   # lying DataRow
@example(b"B\0\0\0\x0d\0\0\0\0\0\x05\0\0\0\0", None, decode_frontend, frozenset())  # lying Bind
@example(b"Q\0\0\0\0", None, decode_frontend, frozenset())
def test_arbitrary_bytes_decode_or_raise_the_codec_error(data, draw, decode, passthrough):
    chunks = [data] if draw is None else draw.draw(splits(data))
    only_codec_errors(decode_everything, Framer(SMALL_CAP, passthrough=passthrough), chunks, decode)


def framed(codes):
    """Strategy: well-framed messages of the given type codes with arbitrary bodies."""
    return st.builds(lambda code, body: bytes([code]) + UINT32.pack(len(body) + 4) + body,
                     st.sampled_from(sorted(codes)), st.binary(max_size=80))


@pytest.mark.slow
@FUZZ
@given(st.lists(framed(FRONTEND), max_size=8))
def test_framed_garbage_bodies_frontend(messages):
    only_codec_errors(decode_everything, Framer(), [b"".join(messages)], decode_frontend)
    for message in messages:
        if message[0] == ord("p"):
            for cls in (SASLInitialResponse, SASLResponse):
                only_codec_errors(cls.decode, message[5:])
            only_codec_errors(lambda m: PasswordMessage.decode(m).password, message[5:])


@pytest.mark.slow
@FUZZ
@given(st.lists(framed(BACKEND), max_size=8))
def test_framed_garbage_bodies_backend(messages):
    only_codec_errors(decode_everything, Framer(), [b"".join(messages)], decode_backend)


@pytest.mark.slow
@FUZZ
@given(st.lists(frontend_messages | backend_messages, min_size=1, max_size=6), st.data())
def test_mutated_valid_streams_decode_or_raise_the_codec_error(messages, data):
    stream = bytearray(b"".join(m.encode() for m in messages))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(stream)))
        how = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if how == "flip" and position < len(stream):
            stream[position] = data.draw(st.integers(0, 255))
        elif how == "insert":
            stream[position:position] = data.draw(st.binary(min_size=1, max_size=4))
        else:
            del stream[position:position + data.draw(st.integers(1, 4))]
    for decode in (decode_frontend, decode_backend):
        only_codec_errors(decode_everything, Framer(SMALL_CAP), [bytes(stream)], decode)


@pytest.mark.slow
@FUZZ
@given(st.binary(max_size=300) | st.lists(startup_packets, max_size=3).map(
    lambda ps: b"".join(p.encode() for p in ps)), st.data())
def test_startup_bytes_decode_or_raise_the_codec_error(data, draw):
    if data and draw.draw(st.booleans()):            # mutate a byte of it
        position = draw.draw(st.integers(0, len(data) - 1))
        data = data[:position] + bytes([draw.draw(st.integers(0, 255))]) + data[position + 1:]

    def run():
        framer = Framer(startup=True)
        for chunk in draw.draw(splits(data)):
            items = framer.feed(chunk)
            while items:
                ((code, packet),) = items
                assert code == STARTUP
                decode_startup(packet[4:])
                items = framer.drain()

    only_codec_errors(run)


@pytest.mark.slow
@FUZZ
@given(st.binary(max_size=200))
def test_decode_startup_on_any_body(body):
    try:
        message = decode_startup(body)
    except RemoteProtocolError as exc:
        assert exc.sqlstate in ("08P01", "0A000", "28000")
    else:
        assert message.encode()[4:] == body or isinstance(message, StartupMessage)


# --------------------------------------------------------------------- the relay never raises --

def fresh_relay() -> PgRelay:
    relay = PgRelay(upstream="upstream:5432", max_message_size=SMALL_CAP)
    relay.client_data(StartupMessage({"user": "fuzz"}).encode())
    relay.server_data(Authentication(0).encode() + ReadyForQuery("I").encode())
    assert relay.phase is Phase.READY
    relay.to_client.clear()
    relay.to_server.clear()
    return relay


def assert_forwarded_or_fatal(relay: PgRelay) -> None:
    if relay.phase is Phase.CLOSED and relay.to_client:
        last = relay.to_client[-1]
        error = ErrorResponse.decode(last[5:])
        assert error.severity == "FATAL"


@pytest.mark.slow
@FUZZ
@given(st.lists(frontend_messages.map(lambda m: m.encode()) | framed(FRONTEND) | st.binary(max_size=12),
                max_size=8), st.data())
def test_relay_never_raises_on_client_bytes(pieces, data):
    relay = fresh_relay()
    stream = b"".join(pieces)
    for chunk in data.draw(splits(stream)):
        relay.client_data(chunk)
    assert_forwarded_or_fatal(relay)
    if relay.phase is not Phase.CLOSED:
        assert b"".join(relay.to_server) == stream[:len(stream) - relay.client.buffered]


class AllowAll:
    """A judge that allows everything: the relay still decodes what it judges."""
    version = 0

    _Allow = Decision(Action.ALLOW)

    def query(self, sql):
        return self._Allow

    def parse(self, sql, name=""):
        return self._Allow

    def close(self, name):
        pass

    def function(self, name):
        return self._Allow


judged_framed = framed(set(FRONTEND))


@pytest.mark.slow
@FUZZ
@given(st.lists(frontend_messages.map(lambda m: m.encode()) | judged_framed | st.binary(max_size=12),
                max_size=8), st.data())
def test_judged_relay_never_raises_on_client_bytes(pieces, data):
    relay = PgRelay(upstream="upstream:5432", judge_factory=lambda user: AllowAll(),
                    max_message_size=SMALL_CAP)
    relay.client_data(StartupMessage({"user": "fuzz"}).encode())
    relay.server_data(Authentication(0).encode() + ReadyForQuery("I").encode())
    relay.to_server.clear()
    relay.to_client.clear()
    for chunk in data.draw(splits(b"".join(pieces))):
        relay.client_data(chunk)
    assert_forwarded_or_fatal(relay)


server_framed = framed(set(BACKEND))


@pytest.mark.slow
@FUZZ
@given(st.lists(frontend_messages, max_size=6),
       st.lists(backend_messages.map(lambda m: m.encode()) | server_framed | st.binary(max_size=12),
                max_size=8), st.data())
def test_relay_never_raises_on_server_bytes(client_messages, pieces, data):
    relay = fresh_relay()
    relay.client_data(b"".join(m.encode() for m in client_messages))
    stream = b"".join(pieces)
    for chunk in data.draw(splits(stream)):
        relay.server_data(chunk)
    assert_forwarded_or_fatal(relay)
    if relay.phase is not Phase.CLOSED:
        assert b"".join(relay.to_client) == stream[:len(stream) - relay.server.buffered]
    relay.server_eof()
    assert relay.phase is Phase.CLOSED


def test_protocol_error_is_the_base_of_the_codec_errors():
    assert issubclass(RemoteProtocolError, ProtocolError)
