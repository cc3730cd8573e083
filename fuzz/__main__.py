"""`python -m fuzz TARGET --seconds N [--engine hypothesis|atheris]`; `python -m fuzz --list`.

Every parser has a target (fuzz/targets.py); `differential` runs the default rule pack against
what PostgreSQL does (fuzz/differential). CI runs short slices through pytest (fuzz/test_targets.py).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fuzz import engines
from fuzz.targets import TARGETS

OTHER = {"differential": "fuzz.differential.runner"}


def main(argv: list[str]) -> int:
    if argv and argv[0] in OTHER:
        return importlib.import_module(OTHER[argv[0]]).main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.strip().splitlines()[0])
    parser.add_argument("target", nargs="?", choices=[*TARGETS, *OTHER])
    parser.add_argument("--list", action="store_true", help="name every target")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--engine", choices=["auto", "hypothesis", "atheris"], default="hypothesis",
                        help="auto: atheris when installed, else hypothesis")
    args = parser.parse_args(argv)
    if args.list or not args.target:
        for target in TARGETS.values():
            print(f"{target.name:20} {target.about}")
        print(f"{'differential':20} the default rule pack against a real PostgreSQL")
        return 0 if args.list else 2
    target = TARGETS[args.target]
    engine = args.engine
    if engine in ("auto", "atheris") and not engines.atheris_available():
        if engine == "atheris":
            print("atheris is not installed (pip install -e '.[fuzz]'); using hypothesis", file=sys.stderr)
        engine = "hypothesis"
    if engine == "auto":
        engine = "atheris"
    if engine == "atheris":
        return engines.run_atheris(target, args.seconds)
    return engines.run_hypothesis(target, args.seconds)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
