"""Encrypted, tamper-evident session recording: writer service, reader, verifier, retention.

Writing needs only the public key (`<key_file>.pub`); reading needs the private key. See
format.py for the file format (encoder.py writes it, frames.py walks it), writer.py for the write
path and its failure modes, reader.py for what `verify` tells apart.
"""

from .errors import KeyFileError, LogUnavailable, SessionLogError
from .encoder import SessionEncoder
from .format import FORMAT_VERSION, READ_VERSIONS, SUFFIX, new_session_id, session_started
from .keys import (Keyring, KeyPair, Rotation, archive_dir, ensure_keys, first_run_notice, init_keys,
                   load_private_key, load_public_key, public_key_path, rotate_keys)
from .reader import (EXIT_CODES, INTACT, OPEN, TAMPERED, TRUNCATED, UNREADABLE, SessionLogRead, find_session,
                     list_sessions, log_files, read_log_bytes, read_session, worst_exit_code)
from .retention import apply_retention
from .writer import SessionLog, SessionRecorder

__all__ = [
    "EXIT_CODES", "FORMAT_VERSION", "INTACT", "READ_VERSIONS", "OPEN", "SUFFIX", "TAMPERED", "TRUNCATED", "UNREADABLE",
    "KeyFileError", "KeyPair", "Keyring", "LogUnavailable", "Rotation", "SessionEncoder", "SessionLog",
    "SessionLogError", "SessionLogRead", "SessionRecorder",
    "apply_retention", "archive_dir", "ensure_keys", "find_session", "first_run_notice", "init_keys",
    "list_sessions", "load_private_key", "load_public_key", "log_files", "new_session_id", "public_key_path",
    "read_log_bytes", "read_session", "rotate_keys", "session_started", "worst_exit_code",
]
