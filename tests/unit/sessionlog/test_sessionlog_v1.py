"""Format version 1 is still read: a log the version-1 writer wrote (tests/data/sessionlog-v1/),
through `wireproxy sessions list/show/verify`, and damage to it still told apart."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sessionlog_helpers import frames_of
from wireproxy.cli.sessions import main
from wireproxy.sessionlog import INTACT, TAMPERED, TRUNCATED, UNREADABLE, Keyring, read_log_bytes
from wireproxy.sessionlog.format import PREAMBLE, V1_FRAME_HEAD, V1_FRAME_SIZE

FIXTURE = Path(__file__).resolve().parents[2] / "data" / "sessionlog-v1"
SESSION = "01a23b12c3592f6afbe8e8c7"


@pytest.fixture
def v1(tmp_path: Path) -> dict[str, Path]:
    """A copy of the fixture (git does not keep a key file's 0600)."""
    root = tmp_path / "v1"
    shutil.copytree(FIXTURE, root)
    (root / "wireproxy.key").chmod(0o600)
    return {"dir": root / "sessions", "key": root / "wireproxy.key", "log": root / "sessions" / f"{SESSION}.wpl"}


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_fixture_is_version_1():
    data = (FIXTURE / "sessions" / f"{SESSION}.wpl").read_bytes()
    assert data[:8] == b"WPSLOG\x00\x01"
    assert [(seq, count) for _, _, seq, count in frames_of(data, V1_FRAME_HEAD, V1_FRAME_SIZE)] == \
        [(i, 1) for i in range(7)]


def test_list_show_verify_read_a_version_1_log(capsys, v1):
    paths = ["--log-dir", v1["dir"], "--key-file", v1["key"]]
    code, out, err = _cli(capsys, "sessions", "verify", *paths)
    assert code == 0 and err == "" and f"{SESSION}  intact: 5 records, sealed" in out
    code, out, _ = _cli(capsys, "sessions", "list", "--json", *paths)
    (item,) = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and item["id"] == SESSION and item["user"] == "alice" and item["database"] == "shop"
    assert item["statements"] == 5 and item["status"] == "intact"
    code, out, _ = _cli(capsys, "sessions", "show", SESSION, *paths)
    assert code == 0
    for text in ("user alice", "SELECT 1", "params: [\"42\"]", "error 42501: blocked by wireproxy rule no-drop",
                 "SELECT 'ünïcödé ☃'", "approval ap-1 approved by bob", "end (closed): 5 records",
                 'summary: {"statements": 5}', "log intact"):
        assert text in out, text


def test_records_of_a_version_1_log(v1):
    read = read_log_bytes(v1["log"].read_bytes(), Keyring.load(v1["key"]), name=SESSION)
    assert read.status == INTACT and read.count == 5 and read.header["format"] == 1
    assert [r["seq"] for r in read.records] == [1, 2, 3, 4, 5]
    assert read.records[0]["result_rows"] == [["1"]] and read.records[1]["params"] == ["42"]
    assert read.end["records"] == 5 and read.end["summary"] == {"statements": 5}


def test_every_single_byte_change_to_a_version_1_log_is_caught(v1):
    data, keyring = v1["log"].read_bytes(), Keyring.load(v1["key"])
    frames = frames_of(data, V1_FRAME_HEAD, V1_FRAME_SIZE)
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 0x01
        read = read_log_bytes(bytes(damaged), keyring, name=SESSION)
        if pos == 7:  # version 1 becomes 0: a version this reader does not know
            assert read.status == UNREADABLE and "unsupported session log format version 0" in read.problem
            continue
        assert read.status == TAMPERED and read.exit_code == 1, (pos, read.problem)
        frame = next((i for i, (a, b, _, _) in enumerate(frames) if a <= pos < b), 0)
        assert read.bad_record is not None and read.bad_record <= frame, (pos, read.bad_record)
    relabelled = data[:7] + b"\x02" + data[8:]
    assert read_log_bytes(relabelled, keyring).status == TAMPERED


def test_a_version_1_log_cut_dropped_or_reordered(v1):
    data, keyring = v1["log"].read_bytes(), Keyring.load(v1["key"])
    frames = frames_of(data, V1_FRAME_HEAD, V1_FRAME_SIZE)
    for length in range(len(data)):
        read = read_log_bytes(data[:length], keyring)
        assert read.status == TRUNCATED, (length, read.problem)
        whole = sum(1 for _, end, seq, _ in frames if end <= length and 0 < seq < 6)
        assert read.count == whole and len(read.records) == whole, length
    (a2, b2), (a3, b3) = frames[2][:2], frames[3][:2]
    dropped = read_log_bytes(data[:a3] + data[b3:], keyring)
    assert dropped.status == TAMPERED and dropped.bad_record == 3 and "record 3 is missing" in dropped.problem
    swapped = read_log_bytes(data[:a2] + data[a3:b3] + data[a2:b2] + data[b3:], keyring)
    assert swapped.status == TAMPERED and swapped.bad_record == 2 and "reordered" in swapped.problem
    assert read_log_bytes(data + b"x", keyring).status == TAMPERED
    assert PREAMBLE.size == 108
