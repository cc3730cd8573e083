"""The server side of SCRAM-SHA-256 against our client (protocols/postgres/scram.py), RFC 7677's
worked example, and everything a hostile client can send: it either gets through the exchange
with the right password or raises ScramRejected, nothing else."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.postgres.scram import ScramClient, ScramError, derive_keys
from wireproxy.auth.scram import (
    ITERATIONS,
    ScramRejected,
    ScramServer,
    Verifier,
    make_verifier,
    parse_verifier,
)

SECRET = b"mock-secret-for-the-tests-0123456789"
FEW = 64                                        # iterations: the tests need speed, not strength
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")

# RFC 7677, section 3.
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = b"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SERVER_FIRST = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
RFC_CLIENT_FINAL = (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def verifier(password: str = "right", iterations: int = FEW) -> Verifier:
    return parse_verifier(make_verifier(password, iterations=iterations, salt=SALT))


def server(v: Verifier | None, username: str = "alice", **kwargs) -> ScramServer:
    return ScramServer(v, mock_secret=SECRET, username=username, **kwargs)


def exchange(v: Verifier | None, password: str, username: str = "alice") -> tuple[ScramServer, ScramClient]:
    """A whole exchange between our client and our server; ScramRejected when it fails."""
    srv, client = server(v, username), ScramClient(password)
    client_final = client.final_message(srv.first(client.first_message()))
    client.verify_server(srv.final(client_final))
    return srv, client


def handmade_final(password: str, gs2: bytes, client_first_bare: bytes, server_first: bytes) -> bytes:
    """A client-final-message made by hand, for gs2 headers our client never sends."""
    attrs = dict(part.split(b"=", 1) for part in server_first.split(b","))
    keys = derive_keys(password, base64.b64decode(attrs[b"s"]), int(attrs[b"i"]))
    without_proof = b"c=" + base64.b64encode(gs2) + b",r=" + attrs[b"r"]
    auth = b",".join((client_first_bare, server_first, without_proof))
    signature = hmac.new(keys.stored_key, auth, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(keys.client_key, signature))
    return without_proof + b",p=" + base64.b64encode(proof)


def test_rfc7677_exchange():
    rfc = parse_verifier(make_verifier("pencil", iterations=4096, salt=SALT))
    srv = server(rfc, nonce=RFC_SERVER_NONCE)
    assert srv.first(RFC_CLIENT_FIRST) == RFC_SERVER_FIRST
    assert srv.final(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL
    assert srv.done


def test_the_right_password_gets_through_and_the_server_proves_itself():
    srv, _ = exchange(verifier("right"), "right")       # the client checked the server's signature
    assert srv.done


def test_the_wrong_password_fails_at_the_proof_only():
    srv, client = server(verifier("right")), ScramClient("wrong")
    client_final = client.final_message(srv.first(client.first_message()))
    with pytest.raises(ScramRejected, match="wrong password"):
        srv.final(client_final)
    assert not srv.done


def test_an_unknown_user_looks_like_a_known_one_until_the_end():
    known = server(verifier("right", iterations=ITERATIONS), nonce=b"N")
    unknown = server(None, "mallory", nonce=b"N")
    known_first, unknown_first = known.first(b"n,,n=,r=abc"), unknown.first(b"n,,n=,r=abc")
    assert known_first.split(b",")[0] == unknown_first.split(b",")[0] == b"r=abcN"
    assert known_first.split(b",")[2] == unknown_first.split(b",")[2] == b"i=4096"
    assert len(known_first) == len(unknown_first)
    # The same name always gets the same salt (probing twice tells nothing); other names another.
    assert server(None, "mallory").first(b"n,,n=,r=x").split(b",")[1] == unknown_first.split(b",")[1]
    assert server(None, "eve").first(b"n,,n=,r=x").split(b",")[1] != unknown_first.split(b",")[1]
    with pytest.raises(ScramRejected, match="no such user"):
        exchange(None, "any password at all", "mallory")


def test_the_mock_salt_depends_on_the_secret():
    other = ScramServer(None, mock_secret=b"another-secret-of-sixteen-bytes", username="mallory")
    assert other.first(b"n,,n=,r=x").split(b",")[1] != server(None, "mallory").first(b"n,,n=,r=x").split(b",")[1]


def test_mock_iterations_follow_the_real_users():
    assert server(None, mock_iterations=10_000).first(b"n,,n=,r=x").endswith(b",i=10000")


@pytest.mark.parametrize("gs2", [b"n,,", b"y,,"])
def test_gs2_without_channel_binding_is_accepted(gs2):
    srv = server(verifier("right"))
    bare = b"n=,r=clientnonce"
    server_first = srv.first(gs2 + bare)
    assert srv.final(handmade_final("right", gs2, bare, server_first)).startswith(b"v=")


def test_the_channel_binding_attribute_must_repeat_the_gs2_header():
    srv = server(verifier("right"))
    bare = b"n=,r=clientnonce"
    server_first = srv.first(b"n,," + bare)
    with pytest.raises(ScramRejected, match="channel binding"):
        srv.final(handmade_final("right", b"y,,", bare, server_first))


def start(v: Verifier | None = None) -> tuple[ScramServer, ScramClient, bytes]:
    srv, client = server(v or verifier("right")), ScramClient("right")
    return srv, client, client.final_message(srv.first(client.first_message()))


def test_a_tampered_nonce_is_refused():
    srv, _, final = start()
    attrs = final.split(b",")
    attrs[1] = attrs[1][:-1] + (b"A" if attrs[1][-1:] != b"A" else b"B")
    with pytest.raises(ScramRejected, match="nonce mismatch"):
        srv.final(b",".join(attrs))


def test_a_tampered_proof_is_refused():
    srv, _, final = start()
    head, proof = final.rsplit(b",p=", 1)
    raw = bytearray(base64.b64decode(proof))
    raw[0] ^= 1
    with pytest.raises(ScramRejected, match="wrong password"):
        srv.final(head + b",p=" + base64.b64encode(bytes(raw)))


def test_a_proof_spelled_with_stray_padding_bits_is_refused():
    # 32 bytes in base64: the character before "=" carries 2 spare bits, zero when canonical.
    # Setting one decodes to the same proof, so only the spelling check can refuse it.
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    srv, _, final = start()
    last = final.rindex(b"=") - 1
    odd = alphabet[alphabet.index(final[last]) | 1]
    tampered = final[:last] + bytes([odd]) + final[last + 1:]
    assert base64.b64decode(tampered.rsplit(b"p=", 1)[1]) == base64.b64decode(final.rsplit(b"p=", 1)[1])
    with pytest.raises(ScramRejected, match="canonical"):
        srv.final(tampered)


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_any_change_to_a_valid_client_final_is_refused(data):
    srv, _, final = start()
    position = data.draw(st.integers(0, len(final) - 1), label="position")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != final[position]), label="byte")
    with pytest.raises(ScramRejected):
        srv.final(final[:position] + bytes([byte]) + final[position + 1:])
    assert not srv.done


@pytest.mark.parametrize("client_first, reason", [
    (b"", "empty"),
    (b"p=tls-server-end-point,,n=,r=abc", "requires channel binding"),
    (b"n,a=alice,n=,r=abc", "authorization identity"),
    (b"x,,n=,r=abc", "gs2 header"),
    (b"n,n=,r=abc", "gs2 header"),
    (b"n", "gs2 header"),
    (b"n,,m=ext,n=,r=abc", "extension"),
    (b"n,,r=abc", "expected n="),
    (b"n,,n=", "expected n="),
    (b"n,,n=,r=", "nonce"),
    (b"n,,n=,r=a b", "nonce"),
    (b"n,,n=,r=\xff", "nonce"),
    (b"n,,n=,r=abc,", "attribute expected"),
    (b"n,,n=,r=abc,1=x", "attribute expected"),
    (b"n,,n=,r=abc,junk", "attribute expected"),
    (b"n,,n=,r=ab\0c", "NUL"),
    (b"n,,n=,r=" + b"a" * 5000, "longer than"),
])
def test_malformed_client_first_messages(client_first, reason):
    srv = server(verifier())
    with pytest.raises(ScramRejected, match=reason):
        srv.first(client_first)
    with pytest.raises(ScramRejected, match="out of order"):       # the exchange is over
        srv.first(b"n,,n=,r=abc")


def test_extensions_after_the_nonce_are_ignored_like_postgresql():
    assert server(verifier(), nonce=b"S").first(b"n,,n=someone,r=abc,x=1").startswith(b"r=abcS,")


@pytest.mark.parametrize("client_final, reason", [
    (b"", "empty"),
    (b"c=biws", "expected c="),
    (b"r=abcS,c=biws,p=" + base64.b64encode(bytes(32)), "expected c="),
    (b"c=biws,r=abcS", "expected c="),
    (b"c=biws,r=abcS,p=" + base64.b64encode(bytes(32)) + b",x=1", "expected c="),
    (b"c=biws,r=abcS,p=x,p=" + base64.b64encode(bytes(32)), "proof is not last"),
    (b"c=eSws,r=abcS,p=" + base64.b64encode(bytes(32)), "channel binding"),
    (b"c=biws,r=abcX,p=" + base64.b64encode(bytes(32)), "nonce mismatch"),
    (b"c=biws,r=abcS,p=!!!!", "not base64"),
    (b"c=biws,r=abcS,p=" + base64.b64encode(bytes(31)), "not 32 bytes"),
    (b"c=biws,r=abcS,p=" + base64.b64encode(bytes(32)), "wrong password"),
    (b"c=biws,r=abcS,x=ext,p=" + base64.b64encode(bytes(32)), "wrong password"),
])
def test_malformed_client_final_messages(client_final, reason):
    srv = server(verifier(), nonce=b"S")
    srv.first(b"n,,n=,r=abc")
    with pytest.raises(ScramRejected, match=reason):
        srv.final(client_final)
    with pytest.raises(ScramRejected, match="out of order"):
        srv.final(client_final)


def test_messages_out_of_order():
    with pytest.raises(ScramRejected, match="out of order"):
        server(verifier()).final(b"c=biws,r=abc,p=" + base64.b64encode(bytes(32)))
    srv, _, final = start()
    with pytest.raises(ScramRejected, match="out of order"):
        srv.first(b"n,,n=,r=abc")
    with pytest.raises(ScramRejected, match="out of order"):       # failed: dead for good
        srv.final(final)
    srv, _, final = start()
    srv.final(final)
    with pytest.raises(ScramRejected, match="out of order"):
        srv.final(final)


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_client_first_gives_a_challenge_or_scram_rejected(data):
    try:
        challenge = server(verifier()).first(data)
    except ScramRejected:
        return
    assert challenge.startswith(b"r=")


@given(st.binary(max_size=300) | st.builds(lambda tail: b"c=biws,r=" + tail, st.binary(max_size=200)))
@settings(max_examples=300, deadline=None)
def test_any_client_final_is_scram_rejected(data):
    srv = server(verifier())
    srv.first(b"n,,n=,r=abc")
    with pytest.raises(ScramRejected):
        srv.final(data)


def test_our_client_refuses_a_server_that_does_not_hold_the_verifier():
    srv, client = server(verifier("right")), ScramClient("right")
    client.final_message(srv.first(client.first_message()))
    other, other_client = server(verifier("other password")), ScramClient("right")
    other_final = other_client.final_message(other.first(other_client.first_message()))
    with pytest.raises(ScramRejected):
        other.final(other_final)
    with pytest.raises(ScramError, match="does not know the password"):
        client.verify_server(b"v=" + base64.b64encode(bytes(32)))


def test_server_arguments_are_checked():
    with pytest.raises(ValueError, match="mock_secret"):
        ScramServer(None, mock_secret=b"short", username="alice")
    with pytest.raises(ValueError, match="nonce"):
        server(verifier(), nonce=b"a,b")
    with pytest.raises(ValueError, match="mock_iterations"):
        server(None, mock_iterations=0)


def test_verifier_text_is_postgresqls():
    text = make_verifier("pencil", iterations=4096, salt=SALT)
    keys = derive_keys("pencil", SALT, 4096)
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    assert text == f"SCRAM-SHA-256$4096:{b64(SALT)}${b64(keys.stored_key)}:{b64(keys.server_key)}"
    assert parse_verifier(text) == Verifier(4096, SALT, keys.stored_key, keys.server_key)
    assert str(parse_verifier(text)) == text


def test_fresh_verifiers_have_fresh_16_byte_salts():
    one, two = parse_verifier(make_verifier("x", iterations=FEW)), parse_verifier(make_verifier("x", iterations=FEW))
    assert len(one.salt) == 16 and one.salt != two.salt and one.stored_key != two.stored_key
    assert parse_verifier(make_verifier("x")).iterations == ITERATIONS == 4096


def test_the_password_is_saslprepped_like_postgresql_does():
    assert make_verifier("I\u00adX", salt=SALT, iterations=FEW) == make_verifier("IX", salt=SALT, iterations=FEW)
    assert make_verifier("\u2168", salt=SALT, iterations=FEW) == make_verifier("IX", salt=SALT, iterations=FEW)
    # Prohibited or not UTF-8: the raw bytes, as PostgreSQL; str and bytes agree.
    assert make_verifier("a\u0340", salt=SALT, iterations=FEW) == make_verifier(b"a\xcd\x80", salt=SALT, iterations=FEW)
    assert make_verifier(b"\xff\xfe", salt=SALT, iterations=FEW).startswith("SCRAM-SHA-256$64:")


def test_the_verifier_keys_stay_out_of_reprs():
    v = verifier()
    assert base64.b64encode(v.stored_key).decode() not in repr(v) and str(v.stored_key) not in repr(v)
    assert "salt=" in repr(v) and "stored_key" not in repr(v)


GOOD = make_verifier("x", iterations=FEW, salt=SALT)
_, _ITER_SALT, _KEYS = GOOD.split("$")
STORED, SERVER = _KEYS.split(":")


@pytest.mark.parametrize("text, reason", [
    ("", "not a SCRAM-SHA-256 verifier"),
    ("md5" + "0" * 32, "not a SCRAM-SHA-256 verifier"),
    (GOOD.replace("SCRAM-SHA-256", "SCRAM-SHA-1"), "not a SCRAM-SHA-256 verifier"),
    (GOOD + "$extra", "not a SCRAM-SHA-256 verifier"),
    (f"SCRAM-SHA-256${_ITER_SALT.replace(':', '')}${_KEYS}", "lacks a ':'"),
    (f"SCRAM-SHA-256${_ITER_SALT}${STORED}{SERVER}", "lacks a ':'"),
    (GOOD.replace("$64:", "$x64:"), "not a number"),
    (GOOD.replace("$64:", "$-64:"), "not a number"),
    (GOOD.replace("$64:", "$\u0664\u0664:"), "not a number"),            # Arabic-Indic digits
    (GOOD.replace("$64:", "$0:"), "not between"),
    (GOOD.replace("$64:", "$99999999999:"), "not between"),
    (f"SCRAM-SHA-256$64:${_KEYS}", "salt is empty"),
    (f"SCRAM-SHA-256$64:!!!!${_KEYS}", "salt is not base64"),
    (f"SCRAM-SHA-256$64:\u00e9${_KEYS}", "salt is not base64"),
    (f"SCRAM-SHA-256${_ITER_SALT}${STORED[:-2]}:{SERVER}", "StoredKey is not base64"),
    (f"SCRAM-SHA-256${_ITER_SALT}${STORED}:{SERVER}x", "ServerKey is not base64"),
    (f"SCRAM-SHA-256${_ITER_SALT}${STORED}:{base64.b64encode(bytes(31)).decode()}", "not 32 bytes"),
])
def test_damaged_verifiers_say_why_without_echoing_them(text, reason):
    with pytest.raises(ValueError, match=reason) as info:
        parse_verifier(text)
    assert STORED not in str(info.value) and SERVER not in str(info.value)


@pytest.mark.parametrize("kwargs, reason", [
    ({"iterations": 0}, "iteration count"),
    ({"iterations": True}, "iteration count"),
    ({"iterations": 10**9}, "iteration count"),
    ({"salt": b""}, "salt"),
])
def test_make_verifier_checks_its_arguments(kwargs, reason):
    with pytest.raises(ValueError, match=reason):
        make_verifier("x", **kwargs)
