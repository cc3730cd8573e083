"""Prometheus metrics: counters and gauges with labels, rendered in the text exposition format.

    from wireproxy.telemetry import metrics
    metrics.STATEMENTS.inc(decision="allow")            # a dict update: cheap enough per statement
    allowed = metrics.STATEMENTS.labels(decision="allow")
    allowed.inc()                                       # cheaper still, for the hot path
    metrics.POLICY_CACHE_HITS.collect_from(lambda: n)   # read at scrape time, costs nothing between
    text = metrics.REGISTRY.render()                    # GET /metrics

Written for the trio thread (no locks: nothing here is shared with worker threads). The names
below are the proxy's metrics; label values that are known in advance start at 0, so a rate()
over them has a series from the first scrape.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def add(self, metric: "_Metric") -> None:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is registered twice")
        self._metrics[metric.name] = metric

    def get(self, name: str) -> "_Metric":
        return self._metrics[name]

    def render(self) -> str:
        return "".join(metric.render() for metric in self._metrics.values())


class _Child:
    """One labelled series; `inc` is an attribute update."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = value


class _Metric:
    KIND = ""

    def __init__(self, name: str, help: str, labels: Iterable[str] = (), *,
                 initial: Iterable[dict[str, str]] = (), registry: Registry | None = None):
        self.name = name
        self.help = help
        self.labelnames = tuple(labels)
        self._series: dict[tuple[str, ...], _Child] = {}
        self._source: Callable[[], float | dict[tuple[str, ...], float]] | None = None
        if not self.labelnames:
            self._series[()] = _Child()
        for labels_ in initial:
            self.labels(**labels_)
        (registry if registry is not None else REGISTRY).add(self)

    def labels(self, **labels: str) -> _Child:
        key = self._key(labels)
        child = self._series.get(key)
        if child is None:
            child = self._series[key] = _Child()
        return child

    def value(self, **labels: str) -> float:
        if self._source is not None:
            collected = self._collected()
            return collected.get(self._key(labels), 0.0)
        child = self._series.get(self._key(labels))
        return child.value if child is not None else 0.0

    def collect_from(self, source: Callable[[], float | dict[tuple[str, ...], float]] | None) -> None:
        """Take the values from `source` at scrape time: a number, or {label values: number}."""
        self._source = source

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        try:
            key = tuple(str(labels[name]) for name in self.labelnames)
        except KeyError as missing:
            raise ValueError(f"{self.name} needs the label {missing}") from None
        if len(labels) != len(self.labelnames):
            extra = sorted(set(labels) - set(self.labelnames))
            raise ValueError(f"{self.name} has no label {extra[0]!r}")
        return key

    def _collected(self) -> dict[tuple[str, ...], float]:
        try:
            got = self._source() if self._source is not None else {}
        except Exception:          # a broken source must not break the scrape
            return {}
        return got if isinstance(got, dict) else {(): float(got)}

    def render(self) -> str:
        lines = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.KIND}"]
        if self._source is not None:
            series = sorted(self._collected().items())
        else:
            series = sorted((key, child.value) for key, child in self._series.items())
        for key, value in series:
            if self.labelnames:
                inner = ",".join(f'{n}="{_escape_label(v)}"' for n, v in zip(self.labelnames, key))
                lines.append(f"{self.name}{{{inner}}} {number_text(value)}")
            else:
                lines.append(f"{self.name} {number_text(value)}")
        return "\n".join(lines) + "\n"


class Counter(_Metric):
    KIND = "counter"

    def inc(self, amount: float = 1, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"{self.name}: a counter only goes up")
        self.labels(**labels).value += amount


class Gauge(_Metric):
    KIND = "gauge"

    def inc(self, amount: float = 1, **labels: str) -> None:
        self.labels(**labels).value += amount

    def dec(self, amount: float = 1, **labels: str) -> None:
        self.labels(**labels).value -= amount

    def set(self, value: float, **labels: str) -> None:
        self.labels(**labels).value = value


def number_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() and abs(value) < 2 ** 53 else repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


REGISTRY = Registry()

_PROTOCOLS = ("postgres", "tcp", "http", "mcp")
_DECISIONS = ("allow", "audit", "approve", "block")

SESSIONS_OPEN = Gauge("wireproxy_sessions_open", "Client sessions open now.", ["protocol"],
                      initial=[{"protocol": p} for p in _PROTOCOLS])
SESSIONS = Counter("wireproxy_sessions_total", "Client sessions accepted.", ["protocol"],
                   initial=[{"protocol": p} for p in _PROTOCOLS])
STATEMENTS = Counter("wireproxy_statements_total", "Statements and requests judged, by decision.",
                     ["decision"], initial=[{"decision": d} for d in _DECISIONS])
BYTES = Counter("wireproxy_bytes_total", "Bytes relayed, by protocol and direction (from_client, from_server).",
                ["protocol", "direction"],
                initial=[{"protocol": p, "direction": d} for p in _PROTOCOLS for d in ("from_client", "from_server")])
POLICY_CACHE_HITS = Counter("wireproxy_policy_cache_hits_total", "Statements judged without parsing.")
POLICY_CACHE_MISSES = Counter("wireproxy_policy_cache_misses_total", "Statements that had to be parsed.")
APPROVALS_PENDING = Gauge("wireproxy_approvals_pending", "Statements held here, waiting for a human.")
APPROVAL_REQUESTS = Counter("wireproxy_approval_requests_total", "Approval requests made, by source.",
                            ["source"], initial=[{"source": p} for p in _PROTOCOLS])
APPROVAL_OUTCOMES = Counter("wireproxy_approval_outcomes_total",
                            "Approval requests ended here, by outcome.", ["outcome"],
                            initial=[{"outcome": o} for o in ("approved", "denied", "timed_out", "withdrawn")])
APPROVAL_WINDOW_USES = Counter("wireproxy_approval_window_grants_used_total",
                               "Statements let through by a live window grant, without asking.")
WEBHOOK_DELIVERIES = Counter("wireproxy_webhook_deliveries_total", "Approval webhooks, by result.",
                             ["result"], initial=[{"result": r} for r in ("delivered", "failed", "dropped")])
ADMIN_REQUESTS = Counter("wireproxy_admin_requests_total", "Admin API requests, by status code.", ["code"])
