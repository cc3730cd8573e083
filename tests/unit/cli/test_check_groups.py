"""`wireproxy check --user NAME --groups a,b SQL` and `--config FILE` for the groups, run as the
real command in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from wireproxy.auth.scram import make_verifier

RULES = '''
[[rule]]
id = "interns-read-only"
action = "block"
groups = ["interns"]
statements = ["insert", "update", "delete"]

[[rule]]
id = "no-drop-but-dba"
action = "block"
statements = ["drop"]
except_users = ["dba-*"]
'''
VERIFIER = make_verifier("not used here", iterations=64)
INSERT = "INSERT INTO t VALUES (1)"


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wireproxy.cli", "check", *args],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def rules(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    return str(path)


@pytest.mark.parametrize("who, code, rule, identity", [
    (["--user", "ann", "--groups", "staff,interns"], 1, "interns-read-only", ("ann", ["interns", "staff"])),
    (["--user", "ann", "--groups", " interns , "], 1, "interns-read-only", ("ann", ["interns"])),
    (["--groups", "interns"], 1, "interns-read-only", (None, ["interns"])),      # no --user: unnamed
    (["--user", "ann", "--groups", "staff"], 0, None, ("ann", ["staff"])),
    (["--user", "ann", "--groups", ""], 0, None, ("ann", [])),
    (["--user", "ann"], 0, None, ("ann", [])),
    ([], 0, None, None),
])
def test_groups_decide(rules, who, code, rule, identity):
    done = check("--rules", rules, *who, "--json", INSERT)
    assert done.returncode == code, done.stderr
    out = json.loads(done.stdout)
    assert out["rule"] == rule
    if identity is None:
        assert "identity" not in out
    else:
        assert out["identity"] == {"user": identity[0], "groups": identity[1]}


def test_human_output_says_who_was_judged(rules):
    done = check("--rules", rules, "--user", "ann", "--groups", "interns", INSERT)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == "decision:   block" and "judged as:  ann  groups: interns" in lines
    done = check("--rules", rules, "--groups", "interns", INSERT)
    assert "judged as:  (unnamed)  groups: interns" in done.stdout.splitlines()
    assert "judged as" not in check("--rules", rules, INSERT).stdout


def test_except_users(rules):
    assert check("--rules", rules, "--user", "dba-1", "DROP TABLE t").returncode == 0
    assert check("--rules", rules, "--user", "ann", "DROP TABLE t").returncode == 1
    assert check("--rules", rules, "DROP TABLE t").returncode == 1                # unnamed: not excepted


def test_groups_from_the_config(rules, tmp_path):
    config = tmp_path / "wireproxy.toml"
    config.write_text(f'[[user]]\nname = "ann"\ngroups = ["interns"]\nscram = "{VERIFIER}"\n')
    done = check("--rules", rules, "--config", str(config), "--user", "ann", "--json", INSERT)
    assert done.returncode == 1 and json.loads(done.stdout)["identity"] == {"user": "ann", "groups": ["interns"]}
    assert check("--rules", rules, "--config", str(config), "--user", "bob", INSERT).returncode == 0
    # --groups says it outright: the config's groups are not added
    assert check("--rules", rules, "--config", str(config), "--user", "ann", "--groups", "staff",
                 INSERT).returncode == 0


def test_a_broken_config_is_one_line_exit_2(rules, tmp_path):
    config = tmp_path / "wireproxy.toml"
    config.write_text('[[user]]\nname = "ann"\nscram = "not a verifier"\n')
    done = check("--rules", rules, "--config", str(config), "--user", "ann", INSERT)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"wireproxy check: {config}:3: ")
