"""Settings in the startup packet go through the rules like the SETs they are: PGOPTIONS
cannot switch roles past a rule that blocks SET ROLE, and a replication connection (BASE_BACKUP
copies the whole cluster) is refused. Real psql and psycopg, default rules."""

from __future__ import annotations

import os
import subprocess

import psycopg
import pytest

from wireproxy.config import DEFAULT_RULES


@pytest.fixture
def default_proxy(start_proxy):
    return start_proxy(rules=DEFAULT_RULES)


def psql(port: int, sql: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["psql", "-X", "-At", "-c", sql, f"host=127.0.0.1 port={port} user=postgres dbname=postgres"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=30)


def test_pgoptions_role_switch_is_blocked_like_set_role(default_proxy, pg):
    pg.psql("DO $$ BEGIN CREATE ROLE startup_target NOLOGIN; EXCEPTION WHEN duplicate_object THEN END $$")
    refused = psql(default_proxy.port, "select current_user", PGOPTIONS="-c role=startup_target")
    assert refused.returncode != 0
    assert "blocked by wireproxy rule no-set-role" in refused.stderr
    # directly, the same option works: wireproxy is what stops it
    direct = psql(pg.port, "select current_user", PGOPTIONS="-c role=startup_target")
    assert direct.stdout.strip() == "startup_target", direct.stderr
    event = default_proxy.wait_for("statement.block", path="startup")
    assert event["statement"] == "SET \"role\" TO 'startup_target'"


def test_ordinary_settings_pass(default_proxy):
    conninfo = (f"host=127.0.0.1 port={default_proxy.port} user=postgres dbname=postgres "
                "options='-c search_path=public -c statement_timeout=5s' application_name=probe")
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("show statement_timeout").fetchone() == ("5s",)
        assert conn.execute("show application_name").fetchone() == ("probe",)


def test_a_replication_connection_is_refused(default_proxy):
    refused = subprocess.run(["psql", "-X", "-c", "IDENTIFY_SYSTEM",
                              f"host=127.0.0.1 port={default_proxy.port} user=postgres dbname=postgres "
                              "replication=database"], capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0
    assert "does not allow replication connections" in refused.stderr
