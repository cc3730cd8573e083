"""Key files: first-run creation, init, rotation, and the errors a user can meet."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sessionlog_helpers import encode_log, statements
from wireproxy.sessionlog import (INTACT, KeyFileError, Keyring, SessionLog, ensure_keys, first_run_notice,
                                  init_keys, load_private_key, load_public_key, read_log_bytes, rotate_keys)


def test_ensure_keys_creates_once(tmp_path):
    key = tmp_path / "conf" / "wireproxy.key"
    pub, created = ensure_keys(key)
    assert created and pub == Path(f"{key}.pub") and pub.exists()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    notice = first_run_notice(key)
    assert str(key) in notice and str(pub) in notice and "off this host" in notice
    assert ensure_keys(key) == (pub, False)
    key.unlink()  # the private key moved off the host: the proxy still has what it needs
    assert ensure_keys(key) == (pub, False)


def test_ensure_keys_derives_a_missing_public_key(tmp_path):
    key = tmp_path / "wireproxy.key"
    pair = init_keys(key)
    pair.public_path.unlink()
    pub, created = ensure_keys(key)
    assert not created and load_public_key(pub).public_bytes_raw() == \
        load_private_key(key).public_key().public_bytes_raw()


def test_bad_key_files_are_clear_errors(tmp_path):
    garbage = tmp_path / "garbage.key"
    garbage.write_text("hello")
    with pytest.raises(KeyFileError, match="not a PEM private key"):
        load_private_key(garbage)
    Path(f"{garbage}.pub").write_text("hello")
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        ensure_keys(garbage)
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        SessionLog(tmp_path / "logs", garbage)
    with pytest.raises(KeyFileError, match="not found"):
        SessionLog(tmp_path / "logs", tmp_path / "missing.key")
    ed = tmp_path / "ed.key"
    ed.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(KeyFileError, match="not an X25519 private key"):
        Keyring.load(ed)
    good = tmp_path / "good.key"
    init_keys(good)
    with pytest.raises(KeyFileError, match="holds a private key"):
        load_public_key(good)
    with pytest.raises(KeyFileError, match="is a public key"):
        Keyring.load(f"{good}.pub")


def test_rotation_keeps_every_old_key(tmp_path):
    key = tmp_path / "wireproxy.key"
    init_keys(key)
    logs = [encode_log(key, statements(1))[1]]
    ids = []
    for _ in range(3):
        rotation = rotate_keys(key)
        ids.append(rotation.previous_key_id)
        assert rotation.archived.exists() and stat.S_IMODE(rotation.archived.stat().st_mode) == 0o600
        logs.append(encode_log(key, statements(1))[1])
    assert len(set(ids)) == 3
    ring = Keyring.load(key)
    assert len(ring.keys) == 4
    assert [read_log_bytes(data, ring).status for data in logs] == [INTACT] * 4
    # Only the current key: the old logs say which key they need.
    current_only = Keyring.of(load_private_key(key))
    read = read_log_bytes(logs[0], current_only)
    assert read.status == "unreadable" and read.key_id in read.problem
