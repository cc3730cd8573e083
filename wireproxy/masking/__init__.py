"""Masking: detectors find sensitive values, styles hide them, row rewriting applies both.

Pure code (no trio, no I/O). The relay builds one `Masker` from the `[[mask]]` rules, asks it
`for_user(user, groups)` once per session and `plan(columns)` at each RowDescription; a None answer at
either step means rows are forwarded as raw bytes.
"""

from .detectors import BUILTINS, Detectors, find
from .errors import MaskConfigError, MaskingError
from .masker import Masker, UserMasker
from .rowplan import RowPlan
from .values import JSON_OID, JSONB_OID, TEXT_ARRAY_OIDS, TEXT_LIKE_OIDS, Column
from .spec import DETECTOR_NAMES, STYLES, CustomDetector, MaskSpec
from .styles import HASH_HEX_CHARS, REDACTED, Hasher, Style

__all__ = [
    "BUILTINS", "Column", "CustomDetector", "DETECTOR_NAMES", "Detectors", "HASH_HEX_CHARS",
    "Hasher", "JSONB_OID", "JSON_OID", "MaskConfigError", "MaskSpec", "Masker", "MaskingError",
    "REDACTED", "RowPlan", "STYLES", "Style", "TEXT_ARRAY_OIDS", "TEXT_LIKE_OIDS", "UserMasker",
    "find",
]
