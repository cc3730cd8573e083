"""`python -m bench [--quick]`: the whole harness, one report (bench/REPORT.md) and one chart
(bench/chart.png).

For each client count (1, 8, 32) it runs bench/pgbench_compare.py (direct, pgbouncer, the bare
trio relay and wireproxy's configurations, interleaved, -M simple/extended/prepared, the
1,000,000-row result with and without masking, the micro figures once), then bench/http_bench.py
(HTTP added latency p50/p99, SSE throughput), and folds it all into one Markdown report.
`--quick` is a smoke run of seconds: it checks the harness works and says nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import pgbench_compare  # noqa: E402


def pgbench_args(args, clients: int, out: Path, first: bool) -> list[str]:
    argv = ["--clients", str(clients), "--threads", str(min(clients, 2)), "--out", str(out)]
    if args.quick:
        argv += ["--quick", "--repeat", "1", "--seconds", "1", "--warmup", "0", "--rows", "20000",
                 "--scale", "1", "--modes", "simple,extended,prepared"]
    else:
        if args.repeat:
            argv += ["--repeat", str(args.repeat)]
        if args.seconds:
            argv += ["--seconds", str(args.seconds)]
    if not first:
        argv += ["--no-micro", "--rows", "0"]      # rows and micro figures do not depend on -c
    return argv


def run_http(quick: bool) -> dict | None:
    argv = [sys.executable, str(BENCH / "http_bench.py"), "--json"]
    if quick:
        argv += ["--requests", "50", "--rounds", "1", "--events", "200"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        print(f"bench: http_bench failed: {done.stderr[-500:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout)


def tps_table(results: dict[int, dict]) -> str:
    lines = ["| clients | mode | target | median TPS | min–max | × direct | × bare relay | proxy CPU µs/tx |",
             "|---:|---|---|---:|---:|---:|---:|---:|"]
    for clients, saved in results.items():
        for mode, per in saved["summary"]["pgbench"].items():
            direct = (per.get("direct") or {}).get("tps")
            bare = (per.get("bare-relay") or per.get("bare relay") or {}).get("tps")
            for name, row in per.items():
                tps, all_ = row["tps"], row["tps_all"]
                span = f"{min(all_):,}–{max(all_):,}" if all_ else "–"
                cpu = row["proxy_cpu_us_per_tx"]
                lines.append(f"| {clients} | {mode} | {name} | {pgbench_compare.fmt(tps, ',.0f')} | {span} | "
                             f"{pgbench_compare.fmt(pgbench_compare.ratio(tps, direct), '.2f')} | "
                             f"{pgbench_compare.fmt(pgbench_compare.ratio(tps, bare), '.2f')} | "
                             f"{pgbench_compare.fmt(cpu, '.1f')} |")
    return "\n".join(lines)


def http_tables(http: dict | None) -> str:
    if http is None:
        return "HTTP bench did not run (see stderr)."
    lines = ["| target | p50 ms | p99 ms | added p50 ms | added p99 ms |", "|---|---:|---:|---:|---:|"]
    for name, row in http["latency"].items():
        added = (f"{row['added_p50_ms']:+.3f} | {row['added_p99_ms']:+.3f}" if "added_p50_ms" in row
                 else "– | –")
        lines.append(f"| {name} | {row['p50_ms']:.3f} | {row['p99_ms']:.3f} | {added} |")
    lines += ["", "| SSE stream | events/s | MB/s |", "|---|---:|---:|"]
    for name, row in http["sse"].items():
        lines.append(f"| {name} | {row['events_per_s']:,.0f} | {row['mb_per_s']:.2f} |")
    return "\n".join(lines)


def chart(results: dict[int, dict], path: Path) -> str:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no chart: matplotlib is not installed (pip install -e '.[bench]')"
    modes = list(next(iter(results.values()))["summary"]["pgbench"])
    fig, axes = plt.subplots(1, len(modes), figsize=(5 * len(modes), 4), sharey=True, squeeze=False)
    for ax, mode in zip(axes[0], modes):
        names = sorted({n for saved in results.values() for n in saved["summary"]["pgbench"].get(mode, {})})
        for name in names:
            xs, ys = [], []
            for clients, saved in results.items():
                row = saved["summary"]["pgbench"].get(mode, {}).get(name)
                if row and row["tps"]:
                    xs.append(clients)
                    ys.append(row["tps"])
            ax.plot(xs, ys, marker="o", label=name)
        ax.set_title(f"pgbench -S -M {mode}")
        ax.set_xlabel("clients")
        ax.set_xscale("log", base=2)
    axes[0][0].set_ylabel("TPS (median)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"![pgbench TPS]({path.name})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.strip().splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: seconds, asserts nothing about speed")
    p.add_argument("--clients", default=None, help="client counts, comma-separated (default 1,8,32; quick 8)")
    p.add_argument("--repeat", type=int, default=None, help="interleaved rounds per client count")
    p.add_argument("--seconds", type=int, default=None, help="pgbench -T per run (default 10)")
    p.add_argument("--no-http", action="store_true", help="skip the HTTP bench")
    p.add_argument("--out", type=Path, default=BENCH, help="where REPORT.md and chart.png go")
    args = p.parse_args(argv)
    counts = [int(c) for c in (args.clients or ("8" if args.quick else "1,8,32")).split(",")]
    results: dict[int, dict] = {}
    for i, clients in enumerate(counts):
        out = args.out / "results" / f"c{clients}"
        code = pgbench_compare.main(pgbench_args(args, clients, out, first=i == 0))
        if code != 0:
            return code
        results[clients] = json.loads((out / "latest.json").read_text())
    http = None if args.no_http else run_http(args.quick)
    first = results[counts[0]]
    picture = chart(results, args.out / "chart.png")
    report = "\n\n".join([
        "# wireproxy benchmark" + (" (--quick smoke run: the figures mean nothing)" if args.quick else ""),
        f"`python -m bench{' --quick' if args.quick else ''}`; machine and versions: "
        f"`{json.dumps(first['meta'].get('machine', first['meta']))[:400]}`",
        "## Targets", "\n".join(f"- **{t['name']}**: {t['what']}" + (f" — SKIPPED: {t['skip']}" if t["skip"] else "")
                                + (f" {t['note']}" if t["note"] else "") for t in first["targets"]),
        "## pgbench -S (interleaved; medians and min–max)", tps_table(results), picture,
        f"## Large results, micro figures (from the {counts[0]}-client run)",
        (args.out / "results" / f"c{counts[0]}" / "latest.md").read_text().split("\n", 1)[1],
        "## HTTP", http_tables(http),
    ]) + "\n"
    (args.out / "REPORT.md").write_text(report)
    print(f"bench: wrote {args.out / 'REPORT.md'} and {args.out / 'chart.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
