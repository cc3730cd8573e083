"""End-to-end benchmark: PostgreSQL direct vs pgbouncer vs a bare trio relay vs wireproxy.

One command (`bench/run`, or `python bench/pgbench_compare.py`) starts a throwaway PostgreSQL
(tests/pgcluster.py), initialises pgbench at scale 10, starts every proxy in front of it on
loopback ports the OS chose, and then measures, interleaved round-robin over the targets and
repeated:

  * `pgbench -S -c 8 -j 2 -T <secs>` in each protocol mode (-M simple, extended, prepared):
    median TPS, its ratio to direct and to the bare trio relay, and the proxy process's CPU
    time per transaction (utime+stime from /proc/<pid>/stat, before and after each run);
  * a 1,000,000-row, ten-column result read by psql through each target: median seconds,
    rows/s, ratios, proxy CPU per row;
  * bench/micro.py (hot-path micro-benchmarks), folded into the same report.

The report is a Markdown document on stdout and in bench/results/latest.md, with every raw
run in bench/results/latest.json. Targets that cannot run (wireproxy serve not built yet,
rules/default.toml absent, pgbouncer missing) are skipped with a note in the report.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests"))

from pgcluster import PgCluster, free_port  # noqa: E402

VENV_BIN = REPO / ".venv" / "bin"
PYTHON = VENV_BIN / "python" if (VENV_BIN / "python").exists() else Path(sys.executable)
WIREPROXY = VENV_BIN / "wireproxy"
DEFAULT_RULES = REPO / "rules" / "default.toml"
PII_RULES = REPO / "rules" / "pii.toml"
CLK_TCK = os.sysconf("SC_CLK_TCK")
DBNAME = "bench"
HOST = "127.0.0.1"

# Ten columns, one of them (`secret`) the masked one in the wireproxy+mask target. The rows
# are materialised once into a table so that the server's cost per run is a plain seq scan
# and what differs between targets is the path in between.
ROWS_SQL = (
    "SELECT g AS id, md5(g::text) AS secret, g + 1 AS c3, g * 2 AS c4, 'row ' || g AS c5,"
    " g % 97 AS c6, (g % 2 = 0) AS c7, 'x'::text AS c8, g::float8 / 3 AS c9,"
    " md5((g + 1)::text) AS c10 FROM generate_series(1, {n}) g"
)
ROWS_QUERY = "SELECT * FROM bench_rows"

MASK_RULES = """\
# bench: one masked column of ten (bench_rows.secret), nothing else.
[[mask]]
id = "bench-secret"
columns = ["secret"]
style = "redact"
"""


# --------------------------------------------------------------------------- processes


def proc_cpu_seconds(pid: int) -> float:
    """utime+stime (+ reaped children) of pid and its live descendants, in seconds."""
    total = 0
    seen: set[int] = set()
    stack = [pid]
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                kids = Path(f"/proc/{p}/task/{task}/children").read_text().split()
                stack.extend(int(k) for k in kids)
        except OSError:
            pass
    return total / CLK_TCK


def wait_for_port(port: int, proc: subprocess.Popen | None, deadline_s: float = 30.0) -> None:
    """Connect in a loop until the port accepts, the process dies, or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection((HOST, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {port} not accepting after {deadline_s:.0f} s") from None
            time.sleep(0.02)


def tail(path: Path | None, n: int = 5) -> str:
    if path is None or not path.exists():
        return ""
    lines = path.read_text(errors="replace").strip().splitlines()
    return " | ".join(lines[-n:])


@dataclass
class Target:
    name: str
    what: str
    port: int | None = None
    proc: subprocess.Popen | None = None
    workloads: tuple[str, ...] = ("pgbench", "rows")
    skip: str = ""                     # non-empty: why this target did not run
    log: Path | None = None
    note: str = ""
    invalid: str = ""                  # non-empty: ran, but does not do what it stands for

    def cpu(self) -> float | None:
        return proc_cpu_seconds(self.proc.pid) if self.proc else None


def stop_proc(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- the targets


def unprivileged_user(cluster: PgCluster) -> str | None:
    if os.geteuid() != 0:
        return None
    return cluster.os_user.name if cluster.os_user else "postgres"


def start_pgbouncer(cluster: PgCluster, workdir: Path) -> Target:
    t = Target("pgbouncer", "pgbouncer, session mode")
    exe = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")
    if not exe:
        t.skip = "pgbouncer not installed (bench/run installs it from Debian's packages)"
        return t
    d = workdir / "pgbouncer"
    d.mkdir()
    t.port = free_port()
    (d / "userlist.txt").write_text(f'"{cluster.user}" ""\n')
    (d / "pgbouncer.ini").write_text(f"""\
[databases]
* = host={HOST} port={cluster.port}

[pgbouncer]
listen_addr = {HOST}
listen_port = {t.port}
unix_socket_dir =
auth_type = trust
auth_file = {d / 'userlist.txt'}
pool_mode = session
max_client_conn = 200
default_pool_size = 50
ignore_startup_parameters = extra_float_digits,options
logfile = {d / 'pgbouncer.log'}
log_connections = 0
log_disconnections = 0
""")
    user = unprivileged_user(cluster)
    kwargs: dict = {}
    if user:
        entry = pwd.getpwnam(user)
        for p in [d, *d.iterdir()]:
            os.chown(p, entry.pw_uid, entry.pw_gid)
        # Popen's user= keeps the pid we hold the pgbouncer process itself (runuser would
        # sit in between), so /proc/<pid>/stat is pgbouncer's own CPU.
        kwargs = dict(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
    t.log = d / "stderr.log"
    with open(t.log, "wb") as err:
        t.proc = subprocess.Popen([exe, str(d / "pgbouncer.ini")], cwd=d, stdin=subprocess.DEVNULL,
                                  stdout=err, stderr=err, **kwargs)
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    t.what = f"{version.strip() or 'pgbouncer'}, session mode"
    return t


def start_bare_relay(cluster: PgCluster, workdir: Path) -> Target:
    t = Target("bare-relay", "bare trio byte relay (bench/bare_relay.py)")
    t.log = workdir / "bare_relay.log"
    with open(t.log, "wb") as err:
        t.proc = subprocess.Popen(
            [str(PYTHON), str(BENCH / "bare_relay.py"), "--listen", f"{HOST}:0",
             "--upstream", f"{HOST}:{cluster.port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True)
    line = t.proc.stdout.readline()
    if not line.strip().isdigit():
        t.skip = f"bare relay did not print its port: {line!r} {tail(t.log)}"
        return t
    t.port = int(line)
    return t


def wireproxy_help() -> tuple[str | None, str]:
    """(help text, note): help text is None when `wireproxy serve` is not usable."""
    if not WIREPROXY.exists():
        return None, f"{WIREPROXY} not found (install the project: bench/run does)"
    try:
        out = subprocess.run([str(WIREPROXY), "serve", "--help"], capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"`wireproxy serve --help` failed: {exc}"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"`wireproxy serve` not available yet ({last})"
    return out.stdout, ""


def start_wireproxy(name: str, what: str, cluster: PgCluster, workdir: Path, rules: list[Path],
                    extra: list[str] | None = None, workloads=("pgbench", "rows"),
                    checkout: Path | None = None) -> Target:
    """`checkout`: run the wireproxy of another checkout of the repository (--baseline)."""
    t = Target(name, what, workloads=workloads)
    d = workdir / name.replace("@", "-at-")
    d.mkdir()
    t.port = free_port()
    program = [str(WIREPROXY)] if checkout is None else [str(VENV_BIN / "python"), "-m", "wireproxy.cli"]
    args = [*program, "serve", "--listen", f"{HOST}:{t.port}",
            "--upstream", f"{HOST}:{cluster.port}"]
    for r in rules:
        args += ["--rules", str(r)]
    args += extra or []
    t.log = d / "stderr.log"
    # cwd in a temp dir: whatever the proxy writes by default lands there, not in the repo.
    env = None if checkout is None else {**os.environ, "PYTHONPATH": str(checkout)}
    with open(t.log, "wb") as err:
        t.proc = subprocess.Popen(args, cwd=d, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env)
    t.note = " ".join(args[1:]).replace(str(workdir) + "/", "$TMP/").replace(str(REPO) + "/", "")
    return t


def baseline_targets(cluster: PgCluster, workdir: Path, ref: str) -> list[Target]:
    """wireproxy, wireproxy+rules and wireproxy+rules+rec as they were at git `ref`, beside
    today's in the same run."""
    checkout = workdir / "baseline"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(checkout), ref], check=True)
    label = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", ref], check=True,
                           capture_output=True, text=True).stdout.strip()
    _rec_dir(workdir, label).parent.mkdir()
    norules = workdir / "norules-baseline.toml"
    norules.write_text('[[postgres]]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:5432"\n')
    return [start_wireproxy(f"wireproxy@{label}", f"wireproxy at {label}, no rule files", cluster, workdir,
                            [], ["--config", str(norules)], checkout=checkout),
            start_wireproxy(f"wireproxy+rules@{label}", f"wireproxy at {label}, its rules/default.toml",
                            cluster, workdir, [checkout / "rules" / "default.toml"], checkout=checkout),
            start_wireproxy(f"wireproxy+rules+rec@{label}", f"wireproxy at {label}, its rules/default.toml, "
                            "session recording on", cluster, workdir, [checkout / "rules" / "default.toml"],
                            ["--log-dir", str(_rec_dir(workdir, label)), "--key-file",
                             str(_rec_dir(workdir, label).parent / "wireproxy.key")],
                            workloads=("pgbench",), checkout=checkout)]


def _rec_dir(workdir: Path, label: str | None = None) -> Path:
    """The log dir of a recording target (today's, or the baseline's at `label`)."""
    return workdir / ("sessionlog" if label is None else f"sessionlog-{label}") / "sessions"


def remove_baseline(workdir: Path) -> None:
    if (workdir / "baseline").exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(workdir / "baseline")],
                       capture_output=True)


def make_targets(cluster: PgCluster, workdir: Path, wanted: set[str] | None, baseline: str | None = None,
                 workers: tuple[int, ...] = ()) -> list[Target]:
    targets = [Target("direct", f"PostgreSQL {pg_version()} directly", port=cluster.port)]
    targets.append(start_pgbouncer(cluster, workdir))
    targets.append(start_bare_relay(cluster, workdir))

    help_text, why = wireproxy_help()
    mask = workdir / "mask-rules.toml"
    mask.write_text(MASK_RULES)
    names = [("wireproxy", "wireproxy, no rule files"),
             ("wireproxy+rules", "wireproxy, rules/default.toml"),
             ("wireproxy+rules+rec", "wireproxy, rules/default.toml, session recording on"),
             ("wireproxy+pii", "wireproxy, rules/default.toml + rules/pii.toml"),
             ("wireproxy+mask", "wireproxy, one masked column of ten")]
    if help_text is None:
        for name, what in names:
            targets.append(Target(name, what, skip=why))
    else:
        # No rule files at all: the listener judges nothing (a config whose [[postgres]] names no
        # rules; --listen/--upstream override its addresses). The relay still frames every message.
        norules = workdir / "norules.toml"
        norules.write_text('[[postgres]]\nlisten = "127.0.0.1:0"\nupstream = "127.0.0.1:5432"\n')
        targets.append(start_wireproxy("wireproxy", "wireproxy, no rule files", cluster, workdir, [],
                                       ["--config", str(norules)]))
        if DEFAULT_RULES.exists():
            targets.append(start_wireproxy("wireproxy+rules", "wireproxy, rules/default.toml",
                                           cluster, workdir, [DEFAULT_RULES]))
            for n in workers:          # serve --workers N: N processes on one SO_REUSEPORT port
                targets.append(start_wireproxy(f"wireproxy+rules-w{n}", f"wireproxy, rules/default.toml, {n} workers",
                                               cluster, workdir, [DEFAULT_RULES], ["--workers", str(n)],
                                               workloads=("pgbench",)))
            if "--log-dir" in help_text and "--key-file" in help_text:
                d = workdir / "sessionlog"
                d.mkdir()
                targets.append(start_wireproxy(
                    "wireproxy+rules+rec", "wireproxy, rules/default.toml, session recording on",
                    cluster, workdir, [DEFAULT_RULES],
                    ["--log-dir", str(d / "sessions"), "--key-file", str(d / "wireproxy.key")],
                    workloads=("pgbench",)))
            else:
                targets.append(Target(names[2][0], names[2][1],
                                      skip="`wireproxy serve` has no --log-dir/--key-file yet"))
            if PII_RULES.exists():
                # The PII pack's detectors scan every text column of every result: bench_rows has
                # no PII, which is what most results are, so this is what the scanning costs.
                targets.append(start_wireproxy("wireproxy+pii", names[3][1], cluster, workdir,
                                               [DEFAULT_RULES, PII_RULES]))
            else:
                targets.append(Target(names[3][0], names[3][1], skip="rules/pii.toml not present yet"))
        else:
            for name, what in names[1:4]:
                targets.append(Target(name, what, skip="rules/default.toml not present yet"))
        targets.append(start_wireproxy("wireproxy+mask", "wireproxy, one masked column of ten",
                                       cluster, workdir, [mask], workloads=("rows",)))
        if baseline:
            targets += baseline_targets(cluster, workdir, baseline)

    if wanted:
        for t in targets:
            if t.name not in wanted and not t.skip:
                t.skip = "not selected (--targets)"
    for t in targets:
        if t.skip or t.port is None:
            continue
        try:
            wait_for_port(t.port, t.proc)
            probe = subprocess.run(psql_args(t.port, "SELECT 1"), capture_output=True, text=True,
                                   timeout=30)
            if probe.returncode != 0 or probe.stdout.strip() != "1":
                raise RuntimeError(f"SELECT 1 through it failed: {probe.stderr.strip()[:300]}")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            t.skip = f"did not come up: {exc}; {tail(t.log)}"
            stop_proc(t.proc)
    return targets


# --------------------------------------------------------------------------- workloads


def psql_args(port: int, sql: str) -> list[str]:
    return ["psql", "-X", "-A", "-t", "-q", "-h", HOST, "-p", str(port), "-U", "postgres",
            "-d", DBNAME, "-c", sql]


def pg_version() -> str:
    out = subprocess.run(["pg_config", "--version"], capture_output=True, text=True)
    return out.stdout.strip().replace("PostgreSQL ", "") or "?"


_TPS = re.compile(r"tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)")
_TXN = re.compile(r"number of transactions actually processed: (\d+)")
_LAT = re.compile(r"latency average = ([\d.]+) ms")
_FAIL = re.compile(r"number of failed transactions: (\d+)")


def run_pgbench(t: Target, mode: str, secs: int, clients: int, threads: int) -> dict:
    args = ["pgbench", "-n", "-S", "-c", str(clients), "-j", str(threads), "-T", str(secs),
            "-M", mode, "-h", HOST, "-p", str(t.port), "-U", "postgres", DBNAME]
    cpu0 = t.cpu()
    t0 = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu1 = t.cpu()
    res: dict = {"target": t.name, "mode": mode, "wall_s": round(wall, 3), "loadavg": os.getloadavg()[0]}
    text = out.stdout + out.stderr
    m_tps, m_txn = _TPS.search(text), _TXN.search(text)
    if out.returncode != 0 or not m_tps or not m_txn:
        res["error"] = (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1][:300]
        return res
    res["tps"] = float(m_tps.group(1))
    res["transactions"] = int(m_txn.group(1))
    if (m := _LAT.search(text)):
        res["latency_ms"] = float(m.group(1))
    if (m := _FAIL.search(text)):
        res["failed"] = int(m.group(1))
    if cpu0 is not None and cpu1 is not None and res["transactions"]:
        res["proxy_cpu_s"] = round(cpu1 - cpu0, 3)
        res["proxy_cpu_us_per_tx"] = (cpu1 - cpu0) / res["transactions"] * 1e6
    return res


def run_rows(t: Target, nrows: int) -> dict:
    cpu0 = t.cpu()
    t0 = time.perf_counter()
    out = subprocess.run(psql_args(t.port, ROWS_QUERY), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    cpu1 = t.cpu()
    res: dict = {"target": t.name, "mode": "rows", "rows": nrows, "loadavg": os.getloadavg()[0]}
    if out.returncode != 0:
        res["error"] = (out.stderr.strip().splitlines() or [f"exit {out.returncode}"])[-1][:300]
        return res
    res["seconds"] = wall
    res["rows_per_s"] = nrows / wall
    if cpu0 is not None and cpu1 is not None:
        res["proxy_cpu_s"] = round(cpu1 - cpu0, 3)
        res["proxy_cpu_us_per_row"] = (cpu1 - cpu0) / nrows * 1e6
    return res


# --------------------------------------------------------------------------- report


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def summarize(runs: list[dict], targets: list[Target], modes: list[str]) -> dict:
    summary: dict = {"pgbench": {}, "rows": {}}
    for mode in modes:
        per = {}
        for t in targets:
            rs = [r for r in runs if r["target"] == t.name and r["mode"] == mode and "tps" in r]
            errs = [r["error"] for r in runs if r["target"] == t.name and r["mode"] == mode and "error" in r]
            if not rs and not errs:
                continue
            cpu = [r["proxy_cpu_us_per_tx"] for r in rs if "proxy_cpu_us_per_tx" in r]
            per[t.name] = {
                "tps": med([r["tps"] for r in rs]),
                "tps_all": [round(r["tps"]) for r in rs],
                "latency_ms": med([r["latency_ms"] for r in rs if "latency_ms" in r]),
                "proxy_cpu_us_per_tx": med(cpu),
                "errors": errs,
            }
        summary["pgbench"][mode] = per
    for t in targets:
        rs = [r for r in runs if r["target"] == t.name and r["mode"] == "rows" and "seconds" in r]
        errs = [r["error"] for r in runs if r["target"] == t.name and r["mode"] == "rows" and "error" in r]
        if not rs and not errs:
            continue
        summary["rows"][t.name] = {
            "seconds": med([r["seconds"] for r in rs]),
            "seconds_all": [round(r["seconds"], 3) for r in rs],
            "rows_per_s": med([r["rows_per_s"] for r in rs]),
            "proxy_cpu_us_per_row": med([r["proxy_cpu_us_per_row"] for r in rs if "proxy_cpu_us_per_row" in r]),
            "errors": errs,
        }
    return summary


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def checks(summary: dict, micro: dict | None, targets=()) -> list[tuple]:
    """(issue, what, measured, cpu_estimate, verdict) for the targets the issues set.

    measured is the issue's own figure (a TPS or throughput ratio). cpu_estimate is the same
    ratio derived from the proxies' CPU per transaction (row) instead: cost(b) / cost(a). It is
    what the ratio would be if the proxy were the bottleneck, and it hardly moves when other
    work on the machine does, while TPS does.
    """
    invalid = {t.name: t.invalid for t in targets if t.invalid}
    out = []
    pg = summary["pgbench"]

    def get(mode, name, key):
        return (pg.get(mode, {}).get(name) or {}).get(key)

    def pair(mode, a, b):
        return (ratio(get(mode, a, "tps"), get(mode, b, "tps")),
                ratio(get(mode, b, "proxy_cpu_us_per_tx"), get(mode, a, "proxy_cpu_us_per_tx")))

    for mode in pg:
        out.append(("#2", f"wireproxy no rules / bare relay, -M {mode}", *pair(mode, "wireproxy", "bare-relay"),
                    ">= 0.90", "wireproxy"))
        out.append(("#3", f"wireproxy default.toml / no rules, -M {mode}", *pair(mode, "wireproxy+rules", "wireproxy"),
                    ">= 0.95", "wireproxy+rules"))
        out.append(("#5", f"recording on / off (default.toml), -M {mode}",
                    *pair(mode, "wireproxy+rules+rec", "wireproxy+rules"), ">= 0.90", "wireproxy+rules+rec"))
    rows = summary["rows"]

    def rget(name, key):
        return (rows.get(name) or {}).get(key)

    def rpair(a, b):
        return (ratio(rget(a, "rows_per_s"), rget(b, "rows_per_s")),
                ratio(rget(b, "proxy_cpu_us_per_row"), rget(a, "proxy_cpu_us_per_row")))

    out.append(("#4", "rows result: wireproxy no mask / bare relay", *rpair("wireproxy", "bare-relay"),
                ">= 0.90", "wireproxy"))
    out.append(("#4", "rows result: wireproxy 1 of 10 masked / bare relay", *rpair("wireproxy+mask", "bare-relay"),
                ">= 0.50", "wireproxy+mask"))
    if micro:
        for row in micro.get("results", []):
            if row.get("name") == "policy: cached judge" and "[rules/default.toml]" in (row.get("note") or ""):
                out.append(("#3", "cached decision (default.toml), µs", row.get("us"), None, "<= 5", ""))
    out.sort(key=lambda c: c[0])
    result = []
    for issue, what, value, cpu, target, depends in out:
        if value is None:
            verdict = "not measured"
        elif depends in invalid:
            verdict = f"not meaningful: {depends} ran but {invalid[depends]}"
        else:
            op, bound = target.split()
            ok = value >= float(bound) if op == ">=" else value <= float(bound)
            verdict = "ok" if ok else "MISSED"
        result.append((issue, what, value, cpu, f"{target}: {verdict}"))
    return result


def render(meta: dict, targets: list[Target], summary: dict, micro: dict | None, micro_note: str) -> str:
    L: list[str] = []
    L.append(f"# wireproxy bench — {meta['date']}")
    L.append("")
    L.append(f"- machine: {meta['cpus']} CPUs ({meta['cpu_model']}), {meta['kernel']}; "
             f"Python {meta['python']}, trio {meta['trio']}; PostgreSQL {meta['postgres']}")
    L.append(f"- git: {meta['git']}; command: `{meta['command']}`")
    L.append(f"- 1-min load average before the run {fmt(meta['loadavg_start'], '.2f')}, after "
             f"{fmt(meta['loadavg_end'], '.2f')} (anything else busy on these {meta['cpus']} CPUs skews all targets)")
    L.append(f"- pgbench -S -c {meta['clients']} -j {meta['threads']} -T {meta['seconds']} at scale "
             f"{meta['scale']}; {meta['repeat']} rounds, targets interleaved round-robin "
             f"(order rotated each round); medians shown, all runs in brackets")
    L.append("- proxy CPU = utime+stime of the proxy process (and its children) from /proc/<pid>/stat "
             "across the run, divided by the transactions (rows) it carried")
    L.append("")
    L.append("## Targets")
    L.append("")
    L.append("| target | what | status |")
    L.append("|---|---|---|")
    for t in targets:
        status = f"skipped: {t.skip}" if t.skip else (f"`{t.note}`" if t.note else "ran")
        L.append(f"| {t.name} | {t.what} | {status.replace('|', '/')} |")
    for mode, per in summary["pgbench"].items():
        if not per:
            continue
        direct = (per.get("direct") or {}).get("tps")
        bare = (per.get("bare-relay") or {}).get("tps")
        L.append("")
        L.append(f"## pgbench -S -M {mode}")
        L.append("")
        L.append("| target | TPS (median) | × direct | × bare relay | proxy CPU µs/tx | latency ms | runs |")
        L.append("|---|---:|---:|---:|---:|---:|---|")
        for name, s in per.items():
            runs = ", ".join(str(x) for x in s["tps_all"])
            if s["errors"]:
                runs += f"; {len(s['errors'])} failed: {s['errors'][0]}"
            L.append(f"| {name} | {fmt(s['tps'], ',.0f')} | {fmt(ratio(s['tps'], direct), '.2f')} | "
                     f"{fmt(ratio(s['tps'], bare), '.2f')} | {fmt(s['proxy_cpu_us_per_tx'], '.1f')} | "
                     f"{fmt(s['latency_ms'], '.3f')} | {runs.replace('|', '/')} |")
    if summary["rows"]:
        rows = summary["rows"]
        direct = (rows.get("direct") or {}).get("rows_per_s")
        bare = (rows.get("bare-relay") or {}).get("rows_per_s")
        L.append("")
        L.append(f"## {meta['rows']:,}-row result, ten columns (psql -A -t > /dev/null: `{ROWS_QUERY}`)")
        L.append("")
        L.append("| target | seconds (median) | rows/s | × direct | × bare relay | proxy CPU µs/row | runs (s) |")
        L.append("|---|---:|---:|---:|---:|---:|---|")
        for name, s in rows.items():
            runs = ", ".join(str(x) for x in s["seconds_all"])
            if s["errors"]:
                runs += f"; {len(s['errors'])} failed: {s['errors'][0]}"
            L.append(f"| {name} | {fmt(s['seconds'], '.3f')} | {fmt(s['rows_per_s'], ',.0f')} | "
                     f"{fmt(ratio(s['rows_per_s'], direct), '.2f')} | {fmt(ratio(s['rows_per_s'], bare), '.2f')} | "
                     f"{fmt(s['proxy_cpu_us_per_row'], '.2f')} | {runs.replace('|', '/')} |")
    L.append("")
    L.append("## Micro-benchmarks (bench/micro.py)")
    L.append("")
    if micro and micro.get("results"):
        L.append(micro_table(micro))
    else:
        L.append(f"not run: {micro_note}")
    L.append("")
    L.append("## Against the targets in the issues")
    L.append("")
    L.append("The value is the issue's own measure (TPS or rows/s ratio, medians of this run); "
             "\"from CPU\" is the same ratio computed from the proxies' CPU per transaction (row), "
             "what it would be if the proxy were the bottleneck. It is far steadier than TPS when "
             "other work shares the machine.")
    L.append("")
    L.append("| issue | measure | value | from CPU | target |")
    L.append("|---|---|---:|---:|---|")
    for issue, what, value, cpu, verdict in checks(summary, micro, targets):
        L.append(f"| {issue} | {what} | {fmt(value, '.2f')} | {fmt(cpu, '.2f')} | {verdict} |")
    L.append("")
    return "\n".join(L)


def micro_table(micro: dict) -> str:
    lines = ["| micro-benchmark | µs per op | note |", "|---|---:|---|"]
    for row in micro["results"]:
        us = fmt(row.get("us"), ".3f") if row.get("us") is not None else "–"
        lines.append(f"| {row['name']} | {us} | {(row.get('note') or row.get('skip') or '').replace('|', '/')} |")
    return "\n".join(lines)


def run_micro(quick: bool) -> tuple[dict | None, str]:
    args = [str(PYTHON), str(BENCH / "micro.py"), "--json"] + (["--quick"] if quick else [])
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=REPO)
    except subprocess.TimeoutExpired:
        return None, "bench/micro.py timed out"
    if out.returncode != 0:
        return None, f"bench/micro.py failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}"
    try:
        return json.loads(out.stdout), ""
    except json.JSONDecodeError as exc:
        return None, f"bench/micro.py printed no JSON: {exc}"


def metadata(args, scale: int, modes: list[str]) -> dict:
    cpu_model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip() or "no commit yet"
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"],
                               capture_output=True, text=True).stdout.strip()
        git += " (uncommitted changes)" if dirty else ""
    except OSError:
        git = "?"
    trio_v = subprocess.run([str(PYTHON), "-c", "import trio; print(trio.__version__)"],
                            capture_output=True, text=True).stdout.strip() or "?"
    return {
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(), "cpu_model": cpu_model, "kernel": f"Linux {platform.release()}",
        "python": platform.python_version(), "trio": trio_v, "postgres": pg_version(), "git": git,
        "command": " ".join(["bench/run", *sys.argv[1:]]),
        "loadavg_start": getattr(args, "loadavg_start", None), "loadavg_end": os.getloadavg()[0],
        "clients": args.clients, "threads": args.threads, "seconds": args.seconds,
        "repeat": args.repeat, "scale": scale, "rows": args.rows, "modes": modes,
    }


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/run", description="pgbench and 1M-row throughput through each proxy, interleaved.")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 rounds × 3 s, 200k rows")
    p.add_argument("--repeat", type=int, default=None, help="rounds over all targets (default 3)")
    p.add_argument("--seconds", type=int, default=None, help="pgbench -T per run (default 10)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--scale", type=int, default=10)
    p.add_argument("--modes", default="simple,extended,prepared", help="pgbench -M modes, comma-separated")
    p.add_argument("--rows", type=int, default=None, help="rows in the throughput run (default 1,000,000; 0 skips)")
    p.add_argument("--targets", default="", help="comma-separated subset of target names")
    p.add_argument("--no-micro", action="store_true", help="skip bench/micro.py")
    p.add_argument("--baseline", metavar="REF", help="also run wireproxy, wireproxy+rules and wireproxy+rules+rec "
                   "as they were at git REF, interleaved with today's (before/after figures from one run)")
    p.add_argument("--workers", type=lambda text: tuple(int(n) for n in text.split(",") if n.strip()),
                   default=(), metavar="N,...", help="also run wireproxy+rules with serve --workers N (e.g. 2,4)")
    p.add_argument("--warmup", type=int, default=None, help="seconds of pgbench per target before measuring (default 2)")
    p.add_argument("--out", type=Path, default=BENCH / "results", help="report directory")
    p.add_argument("--from-json", type=Path, metavar="FILE",
                   help="measure nothing: render the report again from a saved latest.json")
    args = p.parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        targets = [Target(t["name"], t["what"], skip=t["skip"], note=t["note"], invalid=t.get("invalid", ""))
                   for t in saved["targets"]]
        summary = summarize(saved["runs"], targets, saved["meta"]["modes"])
        print(render(saved["meta"], targets, summary, saved["micro"],
                     "" if saved["micro"] else "not run"))
        return 0
    args.repeat = args.repeat or (2 if args.quick else 3)
    args.seconds = args.seconds or (3 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    if args.rows is None:
        args.rows = 200_000 if args.quick else 1_000_000
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in ("simple", "extended", "prepared"):
            p.error(f"unknown pgbench mode {m!r}")
    wanted = {x.strip() for x in args.targets.split(",") if x.strip()} or None
    if wanted:
        wanted.add("direct")

    for tool in ("pgbench", "psql", "pg_config"):
        if not shutil.which(tool):
            print(f"bench: {tool} not found on PATH (install postgresql-client / postgresql)", file=sys.stderr)
            return 2

    # SIGTERM ends the run like Ctrl-C: the finally below stops every process we started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.loadavg_start = os.getloadavg()[0]
    if args.loadavg_start > 0.5:
        print(f"bench: note: load average is {args.loadavg_start:.2f} before starting; "
              "other work on this machine will add noise", file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="wireproxy-bench-"))
    os.chmod(workdir, 0o755)
    cluster = None
    targets: list[Target] = []
    log = lambda msg: print(f"bench: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    try:
        log("starting PostgreSQL")
        cluster = PgCluster.start(settings={"max_connections": "300"})
        subprocess.run(["createdb", "-h", HOST, "-p", str(cluster.port), "-U", "postgres", DBNAME], check=True)
        log(f"pgbench -i -s {args.scale}")
        subprocess.run(["pgbench", "-i", "-q", "-s", str(args.scale), "-h", HOST, "-p", str(cluster.port),
                        "-U", "postgres", DBNAME], check=True, capture_output=True)
        if args.rows:
            log(f"materialising {args.rows:,} rows")
            subprocess.run(psql_args(cluster.port, f"CREATE TABLE bench_rows AS {ROWS_SQL.format(n=args.rows)}"),
                           check=True, capture_output=True)
        subprocess.run(psql_args(cluster.port, "VACUUM ANALYZE"), check=True, capture_output=True)
        subprocess.run(psql_args(cluster.port, "CHECKPOINT"), check=True, capture_output=True)

        log("starting proxies")
        targets = make_targets(cluster, workdir, wanted, args.baseline, args.workers)
        live = [t for t in targets if not t.skip]
        for t in targets:
            log(f"  {t.name}: " + (f"SKIPPED — {t.skip}" if t.skip else f"port {t.port}"))

        if args.rows and any(t.name == "wireproxy+mask" for t in live):
            direct = subprocess.run(psql_args(cluster.port, "SELECT secret FROM bench_rows WHERE id = 1"),
                                    capture_output=True, text=True).stdout.strip()
            t = next(t for t in live if t.name == "wireproxy+mask")
            masked = subprocess.run(psql_args(t.port, "SELECT secret FROM bench_rows WHERE id = 1"),
                                    capture_output=True, text=True).stdout.strip()
            t.note += f" — check: secret {direct!r} arrives as {masked!r}"
            if masked == direct:
                t.note += " (NOT MASKED)"
                t.invalid = "nothing masked"

        for t in live:
            if t.name == "wireproxy+pii":
                shown = subprocess.run(psql_args(t.port, "SELECT 'alice@example.com'"), capture_output=True,
                                       text=True).stdout.strip()
                t.note += f" — check: 'alice@example.com' arrives as {shown!r}"
                if "alice" in shown:
                    t.invalid = "nothing masked"
            if t.name.split("@")[0] in ("wireproxy+rules", "wireproxy+rules+rec", "wireproxy+pii"):
                probe = subprocess.run(psql_args(t.port, "DROP TABLE IF EXISTS wireproxy_bench_absent"),
                                       capture_output=True, text=True)
                if "blocked by wireproxy rule" in probe.stderr:
                    t.note += " — check: DROP blocked"
                else:
                    t.note += " — check: DROP went through (RULES NOT ENFORCED)"
                    t.invalid = "rules not enforced"

        if args.warmup:
            log("warm-up")
            for t in live:
                if "pgbench" in t.workloads:
                    for mode in modes:
                        run_pgbench(t, mode, args.warmup, args.clients, args.threads)

        runs: list[dict] = []
        for rnd in range(args.repeat):
            order = live[rnd % len(live):] + live[:rnd % len(live)] if live else []
            for mode in modes:
                for t in order:
                    if "pgbench" not in t.workloads:
                        continue
                    r = run_pgbench(t, mode, args.seconds, args.clients, args.threads)
                    r["round"] = rnd
                    runs.append(r)
                    log(f"round {rnd + 1}/{args.repeat} -M {mode:<8} {t.name:<20} "
                        + (f"{r['tps']:>9,.0f} tps" if "tps" in r else f"ERROR {r['error']}")
                        + (f"  {r['proxy_cpu_us_per_tx']:.1f} µs/tx" if "proxy_cpu_us_per_tx" in r else ""))
            if args.rows:
                for t in order:
                    if "rows" not in t.workloads:
                        continue
                    r = run_rows(t, args.rows)
                    r["round"] = rnd
                    runs.append(r)
                    log(f"round {rnd + 1}/{args.repeat} rows        {t.name:<20} "
                        + (f"{r['seconds']:>8.3f} s" if "seconds" in r else f"ERROR {r['error']}")
                        + (f"  {r['proxy_cpu_us_per_row']:.2f} µs/row" if "proxy_cpu_us_per_row" in r else ""))
    finally:
        for t in targets:
            stop_proc(t.proc)
            if t.name.split("@")[0] == "wireproxy+rules+rec" and not t.skip:
                logdir = _rec_dir(workdir, t.name.partition("@")[2] or None)
                files = [f for f in logdir.rglob("*") if f.is_file()] if logdir.exists() else []
                size = sum(f.stat().st_size for f in files)
                t.note += (f" — check: {len(files)} files, {size:,} bytes in the log dir" if files
                           else " — check: log dir EMPTY (NOT RECORDING)")
                if not files:
                    t.invalid = (t.invalid + ", " if t.invalid else "") + "nothing recorded"
        if cluster is not None:
            cluster.stop()
        remove_baseline(workdir)
        shutil.rmtree(workdir, ignore_errors=True)

    micro, micro_note = (None, "--no-micro") if args.no_micro else (None, "")
    if not args.no_micro:
        log("bench/micro.py")
        micro, micro_note = run_micro(args.quick)

    summary = summarize(runs, targets, modes)
    meta = metadata(args, args.scale, modes)
    report = render(meta, targets, summary, micro, micro_note)
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(report)
    (args.out / "latest.json").write_text(json.dumps({
        "meta": meta,
        "targets": [{"name": t.name, "what": t.what, "skip": t.skip, "note": t.note, "invalid": t.invalid}
                    for t in targets],
        "summary": summary, "runs": runs, "micro": micro,
        "checks": [dict(zip(("issue", "measure", "value", "from_cpu", "target"), c))
                   for c in checks(summary, micro, targets)],
    }, indent=2))
    log(f"wrote {args.out / 'latest.md'} and {args.out / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
