"""Our verifiers are PostgreSQL's: a real server stores one made by make_verifier as it is and
lets psycopg (libpq) log in with the password; and for the passwords SASLprep treats oddly, the
verifier PostgreSQL makes itself equals ours made with its salt."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from wireproxy.auth.scram import make_verifier, parse_verifier

ROLE = "scramuser"                   # the test cluster's pg_hba puts it on scram-sha-256
ORIGINAL = "scram-secret"


def set_password(pg, password: str) -> None:
    with psycopg.connect(pg.dsn(), autocommit=True) as admin:
        admin.execute("SET password_encryption = 'scram-sha-256'")
        admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(password)))


def stored_verifier(pg) -> str:
    with psycopg.connect(pg.dsn(), autocommit=True) as admin:
        return admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (ROLE,)).fetchone()[0]


def log_in(pg, password: str) -> str:
    with psycopg.connect(pg.dsn(user=ROLE), password=password, connect_timeout=10) as conn:
        return conn.execute("SELECT current_user").fetchone()[0]


@pytest.mark.parametrize("password, iterations", [("a new password", 4096), ("caf\u00e9 \u2168", 10_000)])
def test_postgresql_accepts_our_verifier(pg, password, iterations):
    verifier = make_verifier(password, iterations=iterations)
    try:
        set_password(pg, verifier)
        assert stored_verifier(pg) == verifier               # stored as it is, not hashed again
        assert log_in(pg, password) == ROLE
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            log_in(pg, ORIGINAL)
    finally:
        set_password(pg, ORIGINAL)
    assert log_in(pg, ORIGINAL) == ROLE


@pytest.mark.parametrize("password", [
    "pencil",
    "I\u00adX",                      # soft hyphen: mapped to nothing
    "\u2168",                        # NFKC: IX
    "a\u00a0b",                      # non-ASCII space: mapped to a space
    "e\u0301t\u00e9",                # combining accent: composed
    "\u00ad",                        # nothing left after mapping: PostgreSQL uses the raw bytes
    "a\u0340",                       # prohibited before NFKC, not after: raw bytes
    "\u0627\u0031",                  # bidi rule broken: raw bytes
    "\u05d0\u05d1",                  # right-to-left, well formed
    "\U0001f418 elephant",           # unassigned in Unicode 3.2: raw bytes
    "bell\u0007",                    # ASCII control character: ASCII is used as it is
])
def test_our_saslprep_is_postgresqls(pg, password):
    try:
        set_password(pg, password)                 # PostgreSQL makes the verifier itself
        theirs = stored_verifier(pg)
    finally:
        set_password(pg, ORIGINAL)
    parsed = parse_verifier(theirs)
    assert make_verifier(password, iterations=parsed.iterations, salt=parsed.salt) == theirs
