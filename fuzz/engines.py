"""The two engines behind `python -m fuzz TARGET`: hypothesis (always there) and atheris (the
`fuzz` extra). Both start from the target's seed corpus in fuzz/corpus/<target>/; a failing
input is written to fuzz/crashes/<target>/ so it can be added to the corpus as a regression.
"""

from __future__ import annotations

import hashlib
import sys
import time
import traceback
from pathlib import Path

from fuzz.targets import Target

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
CRASHES = HERE / "crashes"


def seeds(target: str) -> list[bytes]:
    folder = CORPUS / target
    return [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()] if folder.is_dir() else []


def save_crash(target: str, data: bytes) -> Path:
    folder = CRASHES / target
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / hashlib.sha256(data).hexdigest()[:16]
    path.write_bytes(data)
    return path


def atheris_available() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def _mutations(seed_list: list[bytes]):
    """Hypothesis strategy: arbitrary bytes, or a seed with a few bytes changed, cut or added."""
    from hypothesis import strategies as st

    arbitrary = st.binary(max_size=2048)
    if not seed_list:
        return arbitrary

    @st.composite
    def mutated(draw):
        data = bytearray(draw(st.sampled_from(seed_list)))
        for _ in range(draw(st.integers(0, 4))):
            op = draw(st.sampled_from(["flip", "cut", "insert"]))
            at = draw(st.integers(0, len(data)))
            if op == "flip" and at < len(data):
                data[at] = draw(st.integers(0, 255))
            elif op == "cut":
                del data[at:at + draw(st.integers(1, 16))]
            else:
                data[at:at] = draw(st.binary(min_size=1, max_size=16))
        return bytes(data)

    return st.one_of(mutated(), arbitrary)


BATCH = 200


def run_hypothesis(target: Target, seconds: float) -> int:
    from hypothesis import HealthCheck, Phase, given, settings

    seed_list = seeds(target.name)
    for data in seed_list:                              # the corpus first: a known crash fails fast
        target.check(data)
    deadline = time.monotonic() + seconds
    ran = 0

    @settings(max_examples=BATCH, deadline=None, database=None, phases=[Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(_mutations(seed_list))
    def fuzz_batch(data: bytes) -> None:
        try:
            target.check(data)
        except Exception:
            save_crash(target.name, data)
            raise

    while time.monotonic() < deadline:                # fresh random batches until time is up
        try:
            fuzz_batch()
        except Exception:
            traceback.print_exc()
            print(f"{target.name}: FAILED after about {ran} inputs; input saved under "
                  f"{CRASHES / target.name}", file=sys.stderr)
            return 1
        ran += BATCH
    print(f"{target.name}: about {ran} inputs ({len(seed_list)} seeds) in {seconds:g} s, no failure")
    return 0


def run_atheris(target: Target, seconds: float) -> int:
    import tempfile

    import atheris

    folder = CORPUS / target.name
    CRASHES.mkdir(exist_ok=True)
    # libFuzzer writes what it finds into the first corpus dir: a scratch one, the seeds read-only
    scratch = tempfile.mkdtemp(prefix=f"fuzz-{target.name}-")
    args = [sys.argv[0], f"-max_total_time={int(max(1, seconds))}", f"-artifact_prefix={CRASHES}/{target.name}-",
            scratch, *([str(folder)] if folder.is_dir() else [])]
    atheris.instrument_all()                           # coverage feedback from every loaded module
    atheris.Setup(args, target.check)
    atheris.Fuzz()                                      # exits the process when done
    return 0
