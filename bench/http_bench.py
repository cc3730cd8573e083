"""The HTTP side's cost: added latency per request (p50, p99) proxy vs direct against a local
upstream, and SSE throughput with masking on. Runs on its own (not in CI):

    .venv/bin/python bench/http_bench.py [--requests 2000] [--rounds 3] [--events 5000] [--json]

Direct and proxied requests run interleaved in rounds on one keep-alive connection each
(httpx), so machine noise hits both alike; the added latency is proxy minus direct at each
percentile. wireproxy runs as `wireproxy serve` in its own process with rules/llm.toml (content
rules and masks in force, so every request is judged and every answer masked), and also with
no rule files. `x-wireproxy-overhead-ms` (wireproxy's own measure) is reported beside.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from proxyprocess import ProxyProcess  # noqa: E402

BODY = {"model": "m", "messages": [{"role": "user", "content": "Hello, what can you do for me today?"}]}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def start_upstream() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "http_upstream.py")], stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def start_relay(upstream: int) -> tuple[subprocess.Popen, int]:
    """bench/bare_relay.py: a trio byte relay, the floor for any trio proxy on this machine."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bare_relay.py"), "--listen", "127.0.0.1:0",
                             "--upstream", f"127.0.0.1:{upstream}"], stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def start_proxy(upstream: int, rules: str | None, tmp: Path) -> tuple[ProxyProcess, int]:
    config = tmp / f"wireproxy-{rules is not None}.toml"
    lines = ["[[http]]", 'listen = "127.0.0.1:0"', f'upstream = "http://127.0.0.1:{upstream}"']
    if rules:
        lines.append(f'rules = ["{rules}"]')
    config.write_text("\n".join(lines) + "\n")
    proxy = ProxyProcess(["serve", "--config", str(config)])
    return proxy, proxy.ports("http")[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc): steadier than latency on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(client: httpx.Client, url: str, n: int, overheads: list[float] | None = None) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        response = client.post(url, json=BODY)
        response.read()
        out.append((time.perf_counter() - t) * 1000)
        if overheads is not None and "x-wireproxy-overhead-ms" in response.headers:
            overheads.append(float(response.headers["x-wireproxy-overhead-ms"]))
    return out


def latency(args, upstream: int, proxies: dict[str, int], pids: dict[str, int]) -> dict:
    urls = {"direct": f"http://127.0.0.1:{upstream}/v1/chat/completions"}
    urls.update({name: f"http://127.0.0.1:{port}/v1/chat/completions" for name, port in proxies.items()})
    clients = {name: httpx.Client() for name in urls}
    samples: dict[str, list[float]] = {name: [] for name in urls}
    overheads: dict[str, list[float]] = {name: [] for name in proxies}
    for name, url in urls.items():                                   # warm up
        timed(clients[name], url, 200)
    cpu = {name: 0.0 for name in pids}
    for _ in range(args.rounds):
        for name, url in urls.items():
            before = cpu_seconds(pids[name]) if name in pids else 0.0
            samples[name] += timed(clients[name], url, args.requests, overheads.get(name))
            if name in pids:
                cpu[name] += cpu_seconds(pids[name]) - before
    report = {}
    for name, values in samples.items():
        row = {"p50_ms": pct(values, 50), "p99_ms": pct(values, 99), "n": len(values)}
        if name != "direct":
            row["added_p50_ms"] = row["p50_ms"] - pct(samples["direct"], 50)
            row["added_p99_ms"] = row["p99_ms"] - pct(samples["direct"], 99)
            if name in pids:
                row["cpu_us_per_request"] = cpu[name] / len(values) * 1e6
            if overheads[name]:
                row["own_overhead_p50_ms"] = pct(overheads[name], 50)
                row["own_overhead_p99_ms"] = pct(overheads[name], 99)
        report[name] = row
    return report


def throughput(args, upstream: int, proxies: dict[str, int]) -> dict:
    urls = {"direct": upstream, **proxies}
    report = {}
    for name, port in urls.items():
        rates = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            size = events = 0
            with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions",
                              json={**BODY, "stream": True, "n": args.events}, timeout=120) as response:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    events += chunk.count(b"\n\n")
            elapsed = time.perf_counter() - t
            rates.append((events / elapsed, size / elapsed / 1e6))
        report[name] = {"events_per_s": statistics.median(r[0] for r in rates),
                        "mb_per_s": statistics.median(r[1] for r in rates), "events": args.events}
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per target per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=5000, help="SSE events in the throughput stream")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    upstream_proc, upstream = start_upstream()
    tmp = Path(tempfile.mkdtemp(prefix="wireproxy-http-bench-"))
    plain, plain_port = start_proxy(upstream, None, tmp)
    ruled, ruled_port = start_proxy(upstream, str(ROOT / "rules" / "llm.toml"), tmp)
    relay_proc, relay_port = start_relay(upstream)
    proxies = {"bare trio byte relay": relay_port, "wireproxy, no rules": plain_port,
               "wireproxy, rules/llm.toml": ruled_port}
    try:
        pids = {"bare trio byte relay": relay_proc.pid, "wireproxy, no rules": plain.proc.pid,
                "wireproxy, rules/llm.toml": ruled.proc.pid}
        result = {"latency": latency(args, upstream, proxies, pids), "sse": throughput(args, upstream, proxies)}
    finally:
        plain.stop()
        ruled.stop()
        upstream_proc.terminate()
        relay_proc.terminate()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print("| target | p50 ms | p99 ms | added p50 | added p99 | own overhead p50 / p99 | CPU µs/request |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, row in result["latency"].items():
        own = (f"{row['own_overhead_p50_ms']:.3f} / {row['own_overhead_p99_ms']:.3f}"
               if "own_overhead_p50_ms" in row else "–")
        added = f"{row['added_p50_ms']:+.3f} | {row['added_p99_ms']:+.3f} | {own}" if "added_p50_ms" in row else "– | – | –"
        cpu = f"{row['cpu_us_per_request']:.0f}" if "cpu_us_per_request" in row else "–"
        print(f"| {name} | {row['p50_ms']:.3f} | {row['p99_ms']:.3f} | {added} | {cpu} |")
    print()
    print("| SSE stream | events/s | MB/s |")
    print("|---|---:|---:|")
    for name, row in result["sse"].items():
        print(f"| {name} | {row['events_per_s']:,.0f} | {row['mb_per_s']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
