"""The rule packs shipped with wireproxy.

They live in rules/ at the top of the repository; wireproxy/rules is a link to it, so the same
path serves a checkout, an editable install and an installed wheel (pyproject.toml's
package-data copies the packs into the wheel as wireproxy/rules/).
"""

from __future__ import annotations

from pathlib import Path

RULES_DIR = (Path(__file__).resolve().parent.parent / "rules").resolve()
DEFAULT_RULES = RULES_DIR / "default.toml"


def shipped_packs() -> list[Path]:
    """Every shipped pack: rules/*.toml and rules/examples/*.toml."""
    return sorted(RULES_DIR.glob("*.toml")) + sorted((RULES_DIR / "examples").glob("*.toml"))
