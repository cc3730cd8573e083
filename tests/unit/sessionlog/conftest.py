"""Fixtures for the session log tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from wireproxy.sessionlog import Keyring, init_keys


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "wireproxy.key"
    init_keys(path)
    return path


@pytest.fixture
def keyring(key_file: Path) -> Keyring:
    return Keyring.load(key_file)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "sessions"
