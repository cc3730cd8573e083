"""What `sessions` prints for a person and for a SIEM: where it looks for the key, what an empty
filter says, a cut result, escaped statements, one integrity event per damaged session."""

from __future__ import annotations

import json
import time

import pytest

from sessionlog_helpers import frame_spans, statements, write_log
from wireproxy.cli import build_parser
from wireproxy.cli.sessions import main
from wireproxy.sessionlog import init_keys

CUT = {"sql": "select * from big", "protocol": "simple", "decision": "allow", "rules": ["cap-rows"],
       "error": {"code": "54000", "message": "result cut by wireproxy rule cap-rows: more than 1000 rows"},
       "duration_ms": 12.0}


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- where the key is -------------------------------------------------------------------------

def test_the_key_beside_the_log_dir_is_found_without_key_file(capsys, tmp_path):
    log_dir = tmp_path / "state" / "logs"
    init_keys(tmp_path / "state" / "wireproxy.key")          # where serve --log-dir creates it
    write_log(log_dir, tmp_path / "state" / "wireproxy.key", statements(2))
    code, out, err = run(capsys, "sessions", "list", "--json", "--log-dir", log_dir)
    assert code == 0 and err == "" and json.loads(out)["statements"] == 2
    code, out, _ = run(capsys, "keys", "list", "--log-dir", log_dir)
    assert code == 0 and str(tmp_path / "state" / "wireproxy.key") in out


def test_the_config_dir_alone_puts_the_key_beside_it_and_flags_win(capsys, tmp_path):
    init_keys(tmp_path / "var" / "wireproxy.key")
    write_log(tmp_path / "var" / "logs", tmp_path / "var" / "wireproxy.key", statements(1))
    config = tmp_path / "etc" / "wireproxy.toml"
    config.parent.mkdir()
    config.write_text('[log]\ndir = "../var/logs"\n')
    code, out, _ = run(capsys, "sessions", "list", "--json", "--config", config)
    assert code == 0 and len(out.splitlines()) == 1
    other = tmp_path / "elsewhere.key"
    init_keys(other)
    code, _, err = run(capsys, "sessions", "list", "--config", config, "--key-file", other)
    assert code == 2 and "wrong private key" in err            # the flag was used, not the derived one


# --- list ---------------------------------------------------------------------------------------

def test_an_empty_filter_says_what_it_filtered_on(capsys, log_dir, key_file):
    write_log(log_dir, key_file, statements(1), started=time.time() - 7200)
    code, out, err = run(capsys, "sessions", "list", "--log-dir", log_dir, "--key-file", key_file,
                         "--user", "mallory", "--since", "1h")
    assert code == 0 and out == ""
    assert err.startswith(f"no sessions in {log_dir} matching --user mallory --since 1h (started at or after 20")


def test_since_help_is_said_once():
    parser = build_parser()
    for command in ("list", "export"):
        sub = parser._subparsers._group_actions[0].choices["sessions"]
        leaf = sub._subparsers._group_actions[0].choices[command]
        (since,) = [a for a in leaf._actions if "--since" in a.option_strings]
        assert since.help.count("only") == 1 and since.help.count("2025-11-25,") == 1, since.help


# --- show ---------------------------------------------------------------------------------------

def test_a_cut_result_is_shown_as_cut_with_its_rule(capsys, log_dir, key_file):
    path = write_log(log_dir, key_file, [CUT])
    code, out, _ = run(capsys, "sessions", "show", path.stem, "--log-dir", log_dir, "--key-file", key_file)
    assert code == 0
    (line,) = [line for line in out.splitlines() if "select * from big" in line]
    assert "[cut cap-rows]" in line and "[allow" not in line
    assert "error 54000: result cut by wireproxy rule cap-rows: more than 1000 rows" in out


def test_control_characters_in_a_session_are_escaped(capsys, log_dir, key_file):
    nasty = {"sql": "select 1 \x1b[2J\x1b]0;owned\x07\rdone\u202e\x9b31m\tfrom t\nwhere a = 1",
             "protocol": "simple", "decision": "allow", "params": ["\x1b[31mred"], "tag": "SELECT 1",
             "error": {"code": "XX000", "message": "boom \x1b[5m"}}
    path = write_log(log_dir, key_file, [nasty], header={"application_name": "psql\x1b[8m"})
    code, out, _ = run(capsys, "sessions", "show", path.stem, "--log-dir", log_dir, "--key-file", key_file)
    assert code == 0
    assert not any(ch in out for ch in "\x1b\x07\r\u202e\x9b")
    assert "select 1 \\x1b[2J\\x1b]0;owned\\x07\\rdone\\u202e\\x9b31m\tfrom t" in out   # tab kept
    assert "\n              where a = 1\n" in out                   # a newline is still a new line
    assert "application psql\\x1b[8m" in out and "boom \\x1b[5m" in out and "\\u001b[31mred" in out
    code, out, _ = run(capsys, "sessions", "list", "--log-dir", log_dir, "--key-file", key_file)
    assert "\x1b" not in out


# --- export -------------------------------------------------------------------------------------

def test_a_tampered_session_is_one_integrity_event_and_one_warning(capsys, log_dir, key_file):
    path = write_log(log_dir, key_file, statements(40))
    data = bytearray(path.read_bytes())
    data[frame_spans(bytes(data))[30][0] + 30] ^= 1
    path.write_bytes(bytes(data))
    intact = write_log(log_dir, key_file, statements(3), header={"user": "bob"})
    code, out, err = run(capsys, "sessions", "export", "--log-dir", log_dir, "--key-file", key_file)
    assert code == 1
    events = [json.loads(line) for line in out.splitlines()]
    damaged = [e for e in events if e["session_id"] == path.stem]
    integrity = [e for e in damaged if e["event"] == "integrity"]
    assert len(integrity) == 1 and integrity[0]["integrity"] == "tampered" and integrity[0]["bad_record"] == 30
    assert [e["seq"] for e in damaged if e["event"] == "statement"] == list(range(1, 30))   # the proven prefix
    assert all("integrity" not in e for e in damaged if e["event"] == "statement")
    assert err.count(path.stem) == 1 and len(err.splitlines()) == 1
    assert not [e for e in events if e["session_id"] == intact.stem and e["event"] == "integrity"]


@pytest.mark.parametrize("since", [None, "1m"])
def test_a_damaged_session_is_reported_even_when_since_leaves_out_its_records(capsys, log_dir, key_file, since):
    path = write_log(log_dir, key_file, statements(3), end=False, started=time.time() - 7200)
    argv = ["sessions", "export", "--log-dir", log_dir, "--key-file", key_file] + (["--since", since] if since else [])
    code, out, err = run(capsys, *argv)
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events if e["event"] == "integrity"] == ["integrity"]
    assert events[-1]["integrity"] == "truncated" and len(err.splitlines()) == 1 and path.stem in err
