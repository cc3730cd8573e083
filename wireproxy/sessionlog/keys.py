"""Key files for session logs: X25519 pairs, their ids, first-run creation, rotation, keyring.

    <key_file>            private key, PEM PKCS#8, mode 0600 — reading logs needs it; keep it
                          off the proxy host
    <key_file>.pub        public key, PEM SubjectPublicKeyInfo — all the proxy needs to write
    <key_file>.old/<id>.key   private keys retired by `keys rotate`, so older logs stay readable

A key id is the hex of the first 8 bytes of SHA-256 of the raw public key; every log's preamble
names the key id it was written for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from .errors import KeyFileError
from .format import FORMAT_VERSION, key_id_of, unwrap_data_key


def public_key_path(key_file: str | os.PathLike) -> Path:
    return Path(os.fspath(key_file) + ".pub")


def archive_dir(key_file: str | os.PathLike) -> Path:
    return Path(os.fspath(key_file) + ".old")


def key_id(public_key: X25519PublicKey) -> str:
    return key_id_of(public_key).hex()


# --- loading -------------------------------------------------------------------------------


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise KeyFileError(f"{path}: is a directory, not a {what}") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None


def load_public_key(path: str | os.PathLike) -> X25519PublicKey:
    path = Path(path)
    data = _read(path, "public key")
    if b"PRIVATE KEY" in data:
        raise KeyFileError(f"{path}: holds a private key; the proxy needs only the public key here")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path}: not a PEM public key") from None
    if not isinstance(key, X25519PublicKey):
        raise KeyFileError(f"{path}: not an X25519 public key (create keys with `wireproxy keys init`)")
    return key


def load_private_key(path: str | os.PathLike) -> X25519PrivateKey:
    path = Path(path)
    data = _read(path, "private key")
    if b"PUBLIC KEY" in data and b"PRIVATE KEY" not in data:
        raise KeyFileError(f"{path}: is a public key; reading session logs needs the private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyFileError(f"{path}: private key is password-protected, which is not supported") from None
    except ValueError:
        raise KeyFileError(f"{path}: not a PEM private key") from None
    if not isinstance(key, X25519PrivateKey):
        raise KeyFileError(f"{path}: not an X25519 private key (create keys with `wireproxy keys init`)")
    return key


# --- writing -------------------------------------------------------------------------------


def _private_pem(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _public_pem(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` (it must not exist) with `mode`, write, fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _key_error(path: Path, exc: OSError, doing: str) -> KeyFileError:
    return KeyFileError(f"{path}: cannot {doing}: {exc.strerror or exc}")


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    public_path: Path
    key_id: str


def init_keys(key_file: str | os.PathLike) -> KeyPair:
    """Create a new pair at key_file (0600) and key_file.pub. Refuses to replace either."""
    key_file = Path(key_file)
    pub = public_key_path(key_file)
    for path in (key_file, pub):
        if path.exists():
            raise KeyFileError(f"{path}: already exists; use `wireproxy keys rotate` to replace the key pair")
    private = X25519PrivateKey.generate()
    try:
        if key_file.parent and not key_file.parent.exists():
            key_file.parent.mkdir(parents=True, mode=0o700)
        _write_new(key_file, _private_pem(private), 0o600)
    except OSError as exc:
        raise _key_error(key_file, exc, "create private key") from None
    try:
        _write_new(pub, _public_pem(private.public_key()), 0o644)
    except OSError as exc:
        key_file.unlink(missing_ok=True)
        raise _key_error(pub, exc, "create public key") from None
    _fsync_dir(key_file.parent)
    return KeyPair(key_file, pub, key_id(private.public_key()))


def ensure_keys(key_file: str | os.PathLike) -> tuple[Path, bool]:
    """What `serve` calls at start: -> (public key path, created).

    The public key exists: nothing to do (the private key may well live elsewhere — it should).
    Only the private key exists: write its public half. Neither: create a pair, created=True;
    the caller then says where they are and that the private key belongs off the host
    (`first_run_notice`). A public key that is not valid raises KeyFileError."""
    key_file = Path(key_file)
    pub = public_key_path(key_file)
    if pub.exists():
        load_public_key(pub)
        return pub, False
    if key_file.exists():
        private = load_private_key(key_file)
        try:
            _write_new(pub, _public_pem(private.public_key()), 0o644)
        except OSError as exc:
            raise _key_error(pub, exc, "create public key") from None
        return pub, False
    return init_keys(key_file).public_path, True


def first_run_notice(key_file: str | os.PathLike) -> str:
    key_file = Path(key_file)
    pub = public_key_path(key_file)
    kid = key_id(load_public_key(pub))
    return (f"created session log keys (key id {kid}): public key {pub} (the proxy writes with it), "
            f"private key {key_file} (mode 0600): move the private key off this host — reading "
            f"the logs needs it, writing them does not")


@dataclass(frozen=True)
class Rotation:
    key_id: str
    previous_key_id: str
    archived: Path
    public_path: Path


def rotate_keys(key_file: str | os.PathLike) -> Rotation:
    """A new pair at key_file / key_file.pub; the previous private key moves to
    key_file.old/<key id>.key, where readers find it for the logs written with it."""
    key_file = Path(key_file)
    pub = public_key_path(key_file)
    if not key_file.exists():
        if pub.exists():
            raise KeyFileError(f"{key_file}: no private key here (only {pub.name}); rotate where the "
                               f"private key lives, then copy the new {pub.name} to the proxy host")
        raise KeyFileError(f"{key_file}: no key to rotate; create one with `wireproxy keys init`")
    old = load_private_key(key_file)
    old_id = key_id(old.public_key())
    new = X25519PrivateKey.generate()
    new_id = key_id(new.public_key())
    archive = archive_dir(key_file)
    archived = archive / f"{old_id}.key"
    tmp_priv = Path(os.fspath(key_file) + ".new")
    tmp_pub = Path(os.fspath(pub) + ".new")
    try:
        archive.mkdir(mode=0o700, exist_ok=True)
        if archived.exists():
            load_private_key(archived)  # an earlier, interrupted rotation already kept it
        else:
            _write_new(archived, _private_pem(old), 0o600)
        _fsync_dir(archive)
        for tmp in (tmp_priv, tmp_pub):
            tmp.unlink(missing_ok=True)
        _write_new(tmp_priv, _private_pem(new), 0o600)
        _write_new(tmp_pub, _public_pem(new.public_key()), 0o644)
        os.replace(tmp_priv, key_file)
        os.replace(tmp_pub, pub)
        _fsync_dir(key_file.parent)
    except OSError as exc:
        raise _key_error(Path(exc.filename) if exc.filename else key_file, exc, "rotate keys") from None
    return Rotation(new_id, old_id, archived, pub)


# --- reading ---------------------------------------------------------------------------------


@dataclass
class Keyring:
    """The private keys a reader holds: key_file and key_file.old/*.key, by key id."""

    keys: dict[bytes, X25519PrivateKey] = field(default_factory=dict)
    sources: dict[bytes, Path] = field(default_factory=dict)
    key_file: Path | None = None

    @classmethod
    def load(cls, key_file: str | os.PathLike) -> "Keyring":
        key_file = Path(key_file)
        ring = cls(key_file=key_file)
        if key_file.exists():
            ring.add(load_private_key(key_file), key_file)
        archive = archive_dir(key_file)
        if archive.is_dir():
            for path in sorted(archive.glob("*.key")):
                ring.add(load_private_key(path), path)
        if not ring.keys:
            if public_key_path(key_file).exists():
                raise KeyFileError(f"{key_file}: no private key here (only {public_key_path(key_file).name}): "
                                   f"reading session logs needs the private key; pass --key-file where it is")
            raise KeyFileError(f"{key_file}: private key not found")
        return ring

    @classmethod
    def of(cls, *keys: X25519PrivateKey) -> "Keyring":
        ring = cls()
        for key in keys:
            ring.add(key, Path("<memory>"))
        return ring

    def add(self, key: X25519PrivateKey, source: Path) -> None:
        kid = key_id_of(key.public_key())
        self.keys.setdefault(kid, key)
        self.sources.setdefault(kid, source)

    def key_ids(self) -> list[str]:
        return [kid.hex() for kid in self.keys]

    def unwrap(self, kid: bytes, epk: bytes, wrapped: bytes, session_id: bytes,
               version: int = FORMAT_VERSION) -> tuple[bytes | None, bool]:
        """-> (data key or None, whether a key with this key id is held). `version`: the log's."""
        key = self.keys.get(kid)
        if key is not None:
            return unwrap_data_key(key, epk, wrapped, session_id, version), True
        # The key id may be what was altered: any key that unwraps is the right one, and the
        # altered key id then fails the header record's authentication.
        for other in self.keys.values():
            data_key = unwrap_data_key(other, epk, wrapped, session_id, version)
            if data_key is not None:
                return data_key, False
        return None, False
