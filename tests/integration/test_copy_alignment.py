"""The relay's view of the conversation stays aligned with the server's, through the places
where PostgreSQL does not answer one response per message: COPY in the extended protocol (libpq
sends a Sync the server ignores during copy-in), errors that discard to Sync, and pipelines.

Driven with psycopg's pq layer (libpq itself), so the bytes are exactly what libpq sends.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import pq

RULES = """
mode = "enforce"

[[rule]]
id = "no-drop"
action = "block"
statements = ["drop"]

[[rule]]
id = "no-truncate"
action = "block"
statements = ["truncate"]

[[rule]]
id = "no-wipe"
action = "block"
statements = ["delete", "update"]
without_where = true
"""


@pytest.fixture
def proxy(start_proxy, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    return start_proxy(rules=rules)


def connect(pg, port: int) -> pq.PGconn:
    conn = pq.PGconn.connect(pg.dsn(port=port).encode())
    assert conn.status == pq.ConnStatus.OK, conn.get_error_message()
    return conn


def prepared_error(conn: pq.PGconn, sql: str) -> tuple[str, str]:
    """Prepare `sql` as an unnamed statement; the (sqlstate, message) it fails with."""
    result = conn.prepare(b"", sql.encode())
    assert result.status == pq.ExecStatus.FATAL_ERROR, (sql, result.status)
    return (result.error_field(pq.DiagnosticField.SQLSTATE).decode(),
            result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY).decode())


def copy_in_extended(conn: pq.PGconn, rows: list[bytes]) -> None:
    """COPY ... FROM STDIN as libpq does it in the extended protocol: Parse/Bind/Describe/
    Execute/Sync, then the data, CopyDone and a second Sync."""
    assert conn.prepare(b"", b"COPY t FROM STDIN").status == pq.ExecStatus.COMMAND_OK
    result = conn.exec_prepared(b"", [])
    assert result.status == pq.ExecStatus.COPY_IN
    for row in rows:
        assert conn.put_copy_data(row) == 1
    assert conn.put_copy_end() == 1
    result = conn.get_result()
    assert result.status == pq.ExecStatus.COMMAND_OK, result.error_message
    assert conn.get_result() is None


def test_blocks_after_an_extended_copy_name_their_own_rules(pg, proxy):
    conn = connect(pg, proxy.port)
    try:
        assert conn.exec_(b"CREATE TEMP TABLE t (a int)").status == pq.ExecStatus.COMMAND_OK
        copy_in_extended(conn, [b"1\n", b"2\n"])
        assert prepared_error(conn, "DROP TABLE t") == ("42501", "blocked by wireproxy rule no-drop")
        assert prepared_error(conn, "TRUNCATE t") == ("42501", "blocked by wireproxy rule no-truncate")
        assert prepared_error(conn, "DELETE FROM t") == ("42501", "blocked by wireproxy rule no-wipe")
        # ... and the session still answers its own statements, in order.
        result = conn.exec_(b"SELECT count(*) FROM t")
        assert result.status == pq.ExecStatus.TUPLES_OK and result.get_value(0, 0) == b"2"
    finally:
        conn.finish()


def test_many_extended_copies_then_a_pipeline_with_a_block(pg, proxy):
    conn = connect(pg, proxy.port)
    try:
        conn.exec_(b"CREATE TEMP TABLE t (a int)")
        for i in range(5):
            copy_in_extended(conn, [b"%d\n" % i])
        # a failing copy: bad data, the server errors during copy-in and discards to the Sync
        assert conn.prepare(b"bad", b"COPY t FROM STDIN").status == pq.ExecStatus.COMMAND_OK
        assert conn.exec_prepared(b"bad", []).status == pq.ExecStatus.COPY_IN
        conn.put_copy_data(b"not a number\n")
        conn.put_copy_end()
        result = conn.get_result()
        assert result.status == pq.ExecStatus.FATAL_ERROR
        assert result.error_field(pq.DiagnosticField.SQLSTATE) == b"22P02"
        assert conn.get_result() is None
        assert prepared_error(conn, "DROP TABLE t") == ("42501", "blocked by wireproxy rule no-drop")
    finally:
        conn.finish()
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as c2:
        with c2.cursor() as cur:
            cur.execute("CREATE TEMP TABLE t (a int)")
            with cur.copy("COPY t FROM STDIN") as copy:
                copy.write_row((7,))
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no-drop"):
                cur.execute("DROP TABLE t")
            assert cur.execute("SELECT a FROM t").fetchall() == [(7,)]
