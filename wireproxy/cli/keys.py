"""`wireproxy keys init | rotate | list`: the session log's key pair."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from ..sessionlog import (SessionLogError, archive_dir, init_keys, load_private_key, load_public_key,
                          public_key_path, rotate_keys)
from ..sessionlog.keys import key_id
from .paths import KEY_FILE_NAME, command, resolve_paths


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    keys_paths = argparse.ArgumentParser(add_help=False)
    keys_paths.add_argument("--config", metavar="FILE", help="wireproxy.toml: take [log] key_file (or dir) from it")
    keys_paths.add_argument("--log-dir", metavar="DIR",
                            help=f"the session log directory: the key is {KEY_FILE_NAME} beside it, as serve puts it")
    keys_paths.add_argument("--key-file", metavar="FILE",
                            help=f"private key path (default [log] key_file, else {KEY_FILE_NAME} beside the log "
                                 f"directory, else ./{KEY_FILE_NAME})")
    keys = subparsers.add_parser("keys", help="create and rotate the session log key pair",
                                 description="The proxy writes logs with FILE.pub; reading needs FILE.")
    sub = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    p = sub.add_parser("init", parents=[keys_paths], help="create the key pair (private key mode 0600)")
    p.set_defaults(func=run_keys_init)
    p = sub.add_parser("rotate", parents=[keys_paths],
                       help="new key pair; the old private key is kept in FILE.old/ for older logs")
    p.set_defaults(func=run_keys_rotate)
    p = sub.add_parser("list", parents=[keys_paths], help="current and retired key ids")
    p.set_defaults(func=run_keys_list)


# --- keys --------------------------------------------------------------------------------------------


def _key_file(args: argparse.Namespace) -> Path:
    return resolve_paths(args)[1]


@command
def run_keys_init(args: argparse.Namespace, out: TextIO) -> int:
    pair = init_keys(_key_file(args))
    out.write(f"key id {pair.key_id}\n"
              f"  public key  {pair.public_path}  (the proxy needs only this one to write logs)\n"
              f"  private key {pair.private_path}  (mode 0600; reading logs needs it: keep it off the proxy host)\n")
    return 0


@command
def run_keys_rotate(args: argparse.Namespace, out: TextIO) -> int:
    rotation = rotate_keys(_key_file(args))
    out.write(f"new key id {rotation.key_id}; previous key {rotation.previous_key_id} kept at {rotation.archived} "
              f"(older logs need it)\n"
              f"copy {rotation.public_path} to the proxy host: a running proxy picks it up for new sessions\n")
    return 0


@command
def run_keys_list(args: argparse.Namespace, out: TextIO) -> int:
    key_file = _key_file(args)
    pub = public_key_path(key_file)
    shown = False
    if key_file.exists():
        out.write(f"{key_id(load_private_key(key_file).public_key())}  current   {key_file} (private)\n")
        shown = True
    if pub.exists():
        out.write(f"{key_id(load_public_key(pub))}  current   {pub} (public)\n")
        shown = True
    archive = archive_dir(key_file)
    if archive.is_dir():
        for path in sorted(archive.glob("*.key")):
            out.write(f"{key_id(load_private_key(path).public_key())}  retired   {path}\n")
            shown = True
    if not shown:
        raise SessionLogError(f"{key_file}: no keys here; create them with `wireproxy keys init`")
    return 0
