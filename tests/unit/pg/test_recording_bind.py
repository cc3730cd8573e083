"""The recorder's Bind reader agrees with the codec's Bind.decode on any Bind, and refuses
what it refuses."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from protocols.postgres import Bind, ProtocolError
from wireproxy.pg.recording import bind_params

names = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=8)
values = st.lists(st.one_of(st.none(), st.binary(max_size=40)), max_size=6)


@given(names, names, st.lists(st.sampled_from([0, 1]), max_size=6), values, st.lists(st.sampled_from([0, 1]), max_size=3))
def test_agrees_with_the_codec(portal, statement, formats, params, result_formats):
    message = Bind(portal, statement, tuple(formats), tuple(params), tuple(result_formats)).encode()
    decoded = Bind.decode(message[5:])
    assert bind_params(message) == (decoded.param_formats, list(decoded.params))


@given(st.binary(max_size=60))
def test_garbage_raises_the_codecs_error(body):
    message = b"B" + (len(body) + 4).to_bytes(4, "big") + body
    try:
        bind_params(message)
    except ProtocolError:
        return


def test_a_value_past_the_end_is_refused():
    message = Bind("", "s", (), (b"abcdef",), ()).encode()
    with pytest.raises(ProtocolError):
        bind_params(message[:-6])
