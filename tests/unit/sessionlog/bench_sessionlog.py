"""Micro-benchmark: CPU time per record of session recording (not collected by pytest).

    .venv/bin/python tests/unit/sessionlog/bench_sessionlog.py [--records 100000] [--sessions 16]
                                                               [--per-flush 2000]

Records of the shape the relay writes for pgbench -S go through `SessionLog.open_session(...)
.record()` and the writer's flush (encode, encrypt, chain, frame, write, fdatasync) into a log
dir under /tmp. What is measured is process CPU time (time.process_time: every thread, so the
worker threads that write count too) divided by the number of records, with the relay's part
(`record()` alone) shown separately. `--per-flush` records are queued, spread round-robin over
`--sessions` sessions, between two flushes. `--ballast N` keeps N small containers alive, so that
the garbage collector's full passes cost what they cost in a proxy with a real heap: pgbench -S at 10k TPS over 16 clients queues about
2000 records per 200 ms flush, about 125 per session.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import wireproxy  # noqa: E402
from wireproxy.sessionlog import Keyring, SessionLog, init_keys, list_sessions  # noqa: E402

ENTRY = {"sql": "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;", "protocol": "simple",
         "decision": "allow", "tag": "SELECT 1", "rows": 1, "duration_ms": 0.41}
EXTENDED = {"sql": "SELECT abalance FROM pgbench_accounts WHERE aid = $1;", "protocol": "extended",
            "params": ["48213"], "decision": "allow", "tag": "SELECT 1", "rows": 1, "duration_ms": 0.41}


async def run(records: int, sessions: int, per_flush: int, tmp: Path, entry: dict) -> tuple[float, float, int]:
    key_file = tmp / "keys" / "wireproxy.key"
    init_keys(key_file)
    log = SessionLog(tmp / "sessions", key_file, flush_interval=3600)
    record_cpu = 0.0
    async with trio.open_nursery() as nursery:
        await nursery.start(log.run)
        recs = [log.open_session({"user": "bench", "database": "bench", "client_addr": "127.0.0.1:1"})
                for _ in range(sessions)]
        await log.flush()
        start = time.process_time()
        done = 0
        while done < records:
            n = min(per_flush, records - done)
            t0 = time.process_time()
            for i in range(n):
                recs[i % sessions].record(dict(entry))
            record_cpu += time.process_time() - t0
            done += n
            await log.flush()
        total = time.process_time() - start
        for rec in recs:
            rec.close()
        await log.flush()
        nursery.cancel_scope.cancel()
    reads = list_sessions(tmp / "sessions", Keyring.load(key_file))
    assert all(r.status == "intact" for r in reads), [r.describe() for r in reads]
    assert sum(r.count for r in reads) == records, sum(r.count for r in reads)
    # The dict(ENTRY) copy in the loop above is the relay's, not the log's: take it out.
    t0 = time.process_time()
    for _ in range(records):
        dict(entry)
    copy = time.process_time() - t0
    return total - copy, record_cpu - copy, records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--per-flush", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--extended", action="store_true", help="records as -M extended writes them (params)")
    parser.add_argument("--ballast", type=int, default=0,
                        help="keep this many small containers alive (a proxy's heap: what a full GC walks)")
    args = parser.parse_args()
    ballast = [[i] for i in range(args.ballast)]  # noqa: F841
    totals, relays = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            total, relay, n = trio.run(run, args.records, args.sessions, args.per_flush, Path(tmp),
                                     EXTENDED if args.extended else ENTRY)
        totals.append(total / n * 1e6)
        relays.append(relay / n * 1e6)
    print(f"{Path(wireproxy.__file__).parent}: {'extended' if args.extended else 'simple'}, {args.records} records, {args.sessions} sessions, {args.per_flush} per flush: "
          f"{statistics.median(totals):.2f} us/record CPU in total (median of {args.repeat}; "
          f"runs {', '.join(f'{t:.2f}' for t in totals)}), of which record() {statistics.median(relays):.2f}")


if __name__ == "__main__":
    main()
