"""`wireproxy users add`, the real command: its TOML loads as part of a config, its verifier
admits the password through our SCRAM server and client, and its mistakes end in one line."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import pytest

from protocols.postgres.scram import ScramClient
from wireproxy.auth.scram import ScramRejected, ScramServer, parse_verifier
from wireproxy.config import ConfigError, load_config

PASSWORD = "correct horse battery staple"
LISTENER = ('[[postgres]]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:1"\n'
            'upstream_user = "app"\nupstream_password_env = "APP_PASSWORD"\n')


def users_add(*args: str, stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wireproxy.cli", "users", "add", *args], check=False,
                          input=stdin, capture_output=True, timeout=60)


def logs_in(scram: str, password: str | bytes) -> bool:
    server = ScramServer(parse_verifier(scram), mock_secret=b"0123456789abcdef", username="x")
    client = ScramClient(password)
    try:
        final = client.final_message(server.first(client.first_message()))
        client.verify_server(server.final(final))
    except ScramRejected:
        return False
    return True


def load_entry(tmp_path, toml: str):
    path = tmp_path / "wireproxy.toml"
    path.write_text(toml + "\n" + LISTENER)
    return load_config(path).directory.users


def test_the_entry_loads_and_admits_the_password(tmp_path):
    done = users_add("alice", "--groups", "analysts, oncall", "--iterations", "4096",
                     stdin=PASSWORD.encode() + b"\nthe second line is not read\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert PASSWORD not in out and PASSWORD.encode() not in done.stderr
    (user,) = load_entry(tmp_path, out)
    assert (user.name, user.groups) == ("alice", ("analysts", "oncall"))
    assert parse_verifier(user.scram).iterations == 4096
    assert logs_in(user.scram, PASSWORD)
    assert not logs_in(user.scram, PASSWORD + "!")
    assert not logs_in(user.scram, PASSWORD + "\n")


def test_names_and_groups_are_toml_escaped(tmp_path):
    name, group = 'o"brien\\ \u00e9\t\x01', "ops \"team\""
    done = users_add(name, "--groups", group, stdin=b"pw\r\n")          # CRLF: the line end goes
    assert done.returncode == 0, done.stderr
    (user,) = load_entry(tmp_path, done.stdout.decode())
    assert (user.name, user.groups) == (name, (group,))
    assert logs_in(user.scram, "pw") and not logs_in(user.scram, "pw\r")


def test_a_password_that_is_not_utf8_is_used_raw(tmp_path):
    done = users_add("bytes", stdin=b"caf\xe9\n")                           # latin-1, as PostgreSQL allows
    assert done.returncode == 0, done.stderr
    (user,) = load_entry(tmp_path, done.stdout.decode())
    assert logs_in(user.scram, b"caf\xe9") and not logs_in(user.scram, "caf\u00e9")


def test_every_run_makes_a_fresh_salt():
    one, two = (users_add("alice", stdin=b"pw\n").stdout for _ in range(2))
    assert one != two


@pytest.mark.parametrize("args, stdin, problem", [
    (("alice",), b"", "password is empty"),
    (("alice",), b"\nsecret-on-line-two\n", "password is empty"),
    ((" alice",), b"secret-pw\n", "padded"),
    (("",), b"secret-pw\n", "empty"),
    (("alice", "--groups", "a,,b"), b"secret-pw\n", "empty group"),
    (("alice", "--iterations", "0"), b"secret-pw\n", "--iterations"),
    (("alice", "--iterations", "99999999999"), b"secret-pw\n", "--iterations"),
])
def test_mistakes_end_in_one_line_and_exit_2(args, stdin, problem):
    done = users_add(*args, stdin=stdin)
    err = done.stderr.decode()
    assert done.returncode == 2 and done.stdout == b""
    assert problem in err and err.count("\n") == 1 and err.startswith("wireproxy: ")
    assert b"secret" not in done.stderr


def test_a_damaged_verifier_is_a_config_error_naming_file_and_line(tmp_path):
    out = users_add("alice", stdin=b"pw\n").stdout.decode()
    scram = out.split('scram = "', 1)[1].split('"', 1)[0]
    line = out[:out.index("scram =")].count("\n") + 1
    with pytest.raises(ConfigError) as info:
        load_entry(tmp_path, out.replace(scram, scram[:-3]))            # a truncated ServerKey
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'wireproxy.toml'}:{line}: user[0].scram: ")
    assert "ServerKey is not base64" in message and "users add" in message
    assert scram.split("$")[2].split(":")[0] not in message                # no key material echoed


def read_until(fd: int, wanted: bytes, deadline: float) -> bytes:
    seen = b""
    while wanted not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no {wanted!r} from the command; it said {seen!r}")
        seen += os.read(fd, 1024)
    return seen


@pytest.mark.parametrize("second, code", [(PASSWORD, 0), (PASSWORD + "x", 2)])
def test_on_a_terminal_the_password_is_asked_twice(tmp_path, second, code):
    main, tty = os.openpty()
    process = subprocess.Popen([sys.executable, "-m", "wireproxy.cli", "users", "add", "alice"],
                               stdin=tty, stdout=subprocess.PIPE, stderr=tty, start_new_session=True)
    os.close(tty)
    try:
        deadline = time.monotonic() + 30
        prompts = read_until(main, b"Password for alice: ", deadline)
        os.write(main, PASSWORD.encode() + b"\n")
        prompts += read_until(main, b"Again: ", deadline)
        os.write(main, second.encode() + b"\n")
        out, _ = process.communicate(timeout=30)
        try:
            prompts += os.read(main, 4096)
        except OSError:                                  # the terminal closed with the command
            pass
    finally:
        process.kill()
        process.wait()
        os.close(main)
    assert process.returncode == code
    assert PASSWORD.encode() not in prompts and PASSWORD.encode() not in out       # no echo
    if code == 0:
        (user,) = load_entry(tmp_path, out.decode())
        assert logs_in(user.scram, PASSWORD)
    else:
        assert b"do not match" in prompts and out == b""
