"""The two ways masking goes wrong: a peer sent a malformed row, or a rule is unusable."""

from __future__ import annotations


class MaskingError(ValueError):
    """A DataRow, array or COPY line that lies about its own structure (a length past the end,
    a column count that does not match RowDescription, trailing bytes).

    The relay treats it like any other protocol violation from upstream: the row is not
    forwarded. Raised only while rewriting, never for a rule.
    """


class MaskConfigError(ValueError):
    """A `[[mask]]` or `[[detector]]` that cannot work (unknown detector or style, bad glob,
    a regex that does not compile, hash style without key material). The message names the
    rule and, when known, its `file:line`."""
