"""[log] max_result_bytes: result rows go into the session log as the client got them (masked),
up to the per-session cap; past it the log says how many were left out."""

from __future__ import annotations

import json
import subprocess

import psycopg

from proxyprocess import ROOT, WIREPROXY


def test_result_rows_are_recorded_masked_up_to_the_cap(pg, start_proxy, tmp_path):
    pg.psql("drop table if exists rr_people; create table rr_people (id int, email text);"
            "insert into rr_people select g, 'person' || g || '@example.com' from generate_series(1, 500) g")
    rules = tmp_path / "rules.toml"
    rules.write_text('[[mask]]\nid = "mails"\ncolumns = ["email"]\nstyle = "partial"\n')
    proxy = start_proxy(config=f"""
[log]
dir = "{tmp_path / 'sessions'}"
key_file = "{tmp_path / 'wireproxy.key'}"
max_result_bytes = 2000

[[postgres]]
listen = "127.0.0.1:0"
upstream = "127.0.0.1:{pg.port}"
rules = ["{rules}"]
""")
    with psycopg.connect(pg.dsn(port=proxy.port), autocommit=True) as conn:
        assert conn.execute("select id, email from rr_people where id <= 2 order by id").fetchall() == [
            (1, "****@example.com"), (2, "****@example.com")]
        assert len(conn.execute("select id, email from rr_people order by id").fetchall()) == 500
        conn.execute("select 'after the cap'").fetchall()
    session = proxy.wait_for("connection.close")["session"]
    proxy.stop()
    run = subprocess.run([*WIREPROXY, "sessions", "show", session, "--json", "--log-dir", str(tmp_path / "sessions"),
                          "--key-file", str(tmp_path / "wireproxy.key")], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    first, big, last = json.loads(run.stdout)["records"]
    assert first["result_rows"] == [["1", "****@example.com"], ["2", "****@example.com"]]
    assert 0 < len(big.get("result_rows", [])) < 500 and big["result_rows_omitted"] > 0
    assert "result_rows" not in last                    # the session's cap is spent
    assert "person1@example.com" not in run.stdout      # only what the client saw is recorded
