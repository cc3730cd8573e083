"""Cost per row of RowPlan.rewrite (not a test: run `python tests/unit/masking/bench_masking.py`).

A 10-column text-format row (int, names, email, date, timestamp, numeric, bool, note, int,
status); times are CPU time per call, best of several runs.
"""

from __future__ import annotations

import struct
import sys
import time
import timeit

from wireproxy.masking import DETECTOR_NAMES, Column, Masker, MaskSpec

VALUES = [b"123456", b"Alice Smith", b"alice.smith@example.com", b"2024-01-15",
          b"2024-01-15 10:23:45.123+00", b"1234.50", b"t", b"Some free text about the order",
          b"42", b"active"]
NAMES = ["id", "name", "email", "dob", "created", "amount", "ok", "notes", "n", "status"]
OIDS = [23, 25, 25, 1082, 1184, 1700, 16, 25, 23, 1043]
COLUMNS = [Column(n, "public.users", o, 0) for n, o in zip(NAMES, OIDS)]
_I32 = struct.Struct("!i")


def datarow(values: list[bytes | None]) -> bytes:
    out = [struct.pack("!h", len(values))]
    for v in values:
        out.append(b"\xff\xff\xff\xff" if v is None else _I32.pack(len(v)) + v)
    return b"".join(out)


BODY = datarow(VALUES)
BODY_NO_HIT = datarow([b"alice smith at example" if b"@" in v else v for v in VALUES])


def per_call(fn, number: int) -> float:
    best = min(timeit.repeat(fn, number=number, repeat=7, timer=time.process_time))
    return best / number * 1e6


def walk_only(body: bytes) -> int:
    """What the relay pays at least to look at every length of a 10-column row."""
    pos, n = 2, len(body)
    unpack = _I32.unpack_from
    for _ in range(10):
        ln = unpack(body, pos)[0]
        pos += 4
        if ln > 0:
            pos += ln
            if pos > n:
                raise ValueError
    return pos


def main(number: int = 100_000) -> None:
    rows = []
    rows.append(("framing walk only (reference)", per_call(lambda: walk_only(BODY), number)))
    for style in ("redact", "partial", "hash", "null"):
        plan = Masker([MaskSpec("m", columns=("email",), style=style)],
                      hash_key=b"k" * 32).for_user("u").plan(COLUMNS)
        rows.append((f"1 of 10 columns masked, {style}", per_call(lambda: plan.rewrite(BODY),
                                                                   number)))
    plan = Masker([MaskSpec("m", columns=("status",))]).for_user("u").plan(COLUMNS)
    rows.append(("1 of 10 masked (the last column), redact",
                 per_call(lambda: plan.rewrite(BODY), number)))
    for label, dets in (("email+credit_card", ("email", "credit_card")),
                        ("email+card+phone+ssn", ("email", "credit_card", "phone", "us_ssn")),
                        ("all 11 detectors", DETECTOR_NAMES)):
        plan = Masker([MaskSpec("m", detectors=tuple(dets))]).for_user("u").plan(COLUMNS)
        rows.append((f"0 masked, {label}, no hit in row",
                     per_call(lambda: plan.rewrite(BODY_NO_HIT), number)))
        rows.append((f"0 masked, {label}, email in row",
                     per_call(lambda: plan.rewrite(BODY), number // 2)))
    width = max(len(r[0]) for r in rows)
    for label, us in rows:
        print(f"{label:{width}s} {us:6.2f} µs/row")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
