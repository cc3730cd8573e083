"""SCRAM-SHA-256 client math against RFC 7677's worked example, and its refusals."""

from __future__ import annotations

import base64

import pytest

from protocols.postgres.scram import ScramClient, ScramError, derive_keys, normalize_password, saslprep

# RFC 7677, section 3.
CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
CLIENT_FINAL = (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def rfc_client() -> ScramClient:
    return ScramClient("pencil", username="user", nonce=CLIENT_NONCE)


def test_rfc7677_exchange():
    scram = rfc_client()
    assert scram.first_message() == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    assert scram.final_message(SERVER_FIRST) == CLIENT_FINAL
    scram.verify_server(SERVER_FINAL)


def test_a_wrong_server_signature_is_refused():
    scram = rfc_client()
    scram.final_message(SERVER_FIRST)
    forged = b"v=" + base64.b64encode(b"\0" * 32)
    with pytest.raises(ScramError, match="does not know the password"):
        scram.verify_server(forged)


def test_the_wrong_password_gives_another_proof():
    scram = ScramClient("pencil!", username="user", nonce=CLIENT_NONCE)
    assert scram.final_message(SERVER_FIRST) != CLIENT_FINAL
    with pytest.raises(ScramError):
        scram.verify_server(SERVER_FINAL)


@pytest.mark.parametrize("server_first, problem", [
    (b"r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "does not extend"),
    (b"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "does not extend"),
    (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0", "out of bounds"),
    (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999", "out of bounds"),
    (b"r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1", "not a number"),
    (b"r=rOprNGfwEbeRWgbNEkqOx,s=!!!,i=4096", "not base64"),
    (b"r=rOprNGfwEbeRWgbNEkqOx,i=4096", "lacks"),
    (b"m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "extension"),
    (b"garbage", "malformed"),
    (b"r=\xff", "not ASCII"),
])
def test_malformed_server_first_messages_raise_scram_error(server_first, problem):
    with pytest.raises(ScramError, match=problem):
        rfc_client().final_message(server_first)


def test_server_error_and_out_of_order_final():
    with pytest.raises(ScramError, match="before server-first"):
        rfc_client().verify_server(SERVER_FINAL)
    scram = rfc_client()
    scram.final_message(SERVER_FIRST)
    with pytest.raises(ScramError, match="invalid-proof"):
        scram.verify_server(b"e=invalid-proof")


def test_user_names_are_escaped_and_nonces_are_fresh():
    assert ScramClient("x", username="a=b,c", nonce="N").first_message() == b"n,,n=a=3Db=2Cc,r=N"
    one, two = ScramClient("x").first_message(), ScramClient("x").first_message()
    assert one.startswith(b"n,,n=,r=") and one != two


def test_saslprep():
    assert saslprep("I\u00adX") == "IX"                 # RFC 4013 examples: soft hyphen mapped away
    assert saslprep("user") == "user"
    assert saslprep("USER") == "USER"
    assert saslprep("\u00aa") == "a"                     # NFKC
    assert saslprep("\u2168") == "IX"
    assert saslprep("\u0007") is None                    # prohibited control character
    assert saslprep("\u0627\u0031") is None              # bidi: must end in RandALCat
    assert saslprep("a\u00a0b") == "a b"                 # non-ASCII space mapped to space


def test_passwords_saslprep_cannot_take_are_used_raw():
    assert normalize_password("\u0007bell") == b"\x07bell"
    assert normalize_password(b"\xff\xfe") == b"\xff\xfe"
    assert normalize_password("I\u00adX") == b"IX"


def test_derived_keys_match_the_rfc_proof():
    keys = derive_keys("pencil", base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096)
    assert len(keys.stored_key) == len(keys.server_key) == 32
    assert keys.stored_key != keys.server_key


def test_saslprep_follows_postgresql_where_it_differs_from_the_rfc():
    # pg_saslprep (src/common/saslprep.c): mapped to nothing is prohibited (the raw bytes are
    # used), and the prohibited/bidi checks read the mapped text before NFKC.
    assert saslprep("\u00ad") is None
    assert normalize_password("\u00ad") == b"\xc2\xad"
    assert saslprep("a\u0340") is None                  # C.8 before NFKC (which makes it U+00E0)
    assert normalize_password("\u0007") == b"\x07"      # ASCII is used as it is
