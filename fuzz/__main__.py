"""`python -m fuzz TARGET [options]`: the long fuzz runs (CI runs short slices through pytest).

Targets:
    differential   the default rule pack against what PostgreSQL actually does (fuzz/differential)
"""

from __future__ import annotations

import importlib
import sys

TARGETS = {
    "differential": "fuzz.differential.runner",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in TARGETS:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return importlib.import_module(TARGETS[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
