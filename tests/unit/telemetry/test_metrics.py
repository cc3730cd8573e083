"""The metrics registry renders what prometheus_client's parser reads back, escapes label
values, refuses misuse, and reads collected values at scrape time."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from wireproxy.telemetry import metrics
from wireproxy.telemetry.metrics import Counter, Gauge, Registry


def parsed(registry: Registry) -> dict:
    return {family.name: (family.type, family.documentation,
                          {tuple(sorted(s.labels.items())): s.value for s in family.samples})
            for family in text_string_to_metric_families(registry.render())}


def test_counters_and_gauges_round_trip_through_the_parser():
    registry = Registry()
    requests = Counter("t_requests_total", "Requests.\nSecond line \\ too.", ["route"], registry=registry,
                       initial=[{"route": "/a"}])
    in_flight = Gauge("t_in_flight", "In flight.", registry=registry)
    requests.inc(route="/a")
    requests.inc(2.5, route='/b"\\\n')
    fast = requests.labels(route="/a")
    fast.inc()
    in_flight.inc(3)
    in_flight.dec()
    got = parsed(registry)
    assert got["t_requests"][0] == "counter"
    assert got["t_requests"][1] == "Requests.\nSecond line \\ too."
    assert got["t_requests"][2] == {(("route", "/a"),): 2, (("route", '/b"\\\n'),): 2.5}
    assert got["t_in_flight"] == ("gauge", "In flight.", {(): 2})
    assert requests.value(route="/a") == 2 and in_flight.value() == 2


def test_collected_values_are_read_at_scrape_time():
    registry = Registry()
    hits = Counter("t_hits_total", "Hits.", registry=registry)
    by_kind = Gauge("t_things", "Things.", ["kind"], registry=registry)
    state = {"n": 1}
    hits.collect_from(lambda: state["n"])
    by_kind.collect_from(lambda: {("a",): 1, ("b",): 2})
    assert parsed(registry)["t_hits"][2] == {(): 1}
    state["n"] = 41
    assert parsed(registry)["t_hits"][2] == {(): 41} and hits.value() == 41
    assert parsed(registry)["t_things"][2] == {(("kind", "a"),): 1, (("kind", "b"),): 2}
    hits.collect_from(lambda: 1 / 0)                     # a broken source: an empty series, not a failed scrape
    assert parsed(registry)["t_hits"][2] == {}


def test_misuse_raises():
    registry = Registry()
    counter = Counter("t_x_total", "X.", ["a"], registry=registry)
    with pytest.raises(ValueError, match="needs the label"):
        counter.inc()
    with pytest.raises(ValueError, match="no label 'b'"):
        counter.inc(a="1", b="2")
    with pytest.raises(ValueError, match="only goes up"):
        counter.inc(-1, a="1")
    with pytest.raises(ValueError, match="registered twice"):
        Counter("t_x_total", "again", registry=registry)


def test_the_proxy_metrics_are_all_there_from_the_start():
    names = {family.name for family in text_string_to_metric_families(metrics.REGISTRY.render())}
    assert {"wireproxy_sessions_open", "wireproxy_sessions", "wireproxy_statements", "wireproxy_bytes",
            "wireproxy_policy_cache_hits", "wireproxy_policy_cache_misses", "wireproxy_approvals_pending",
            "wireproxy_approval_requests", "wireproxy_approval_outcomes"} <= names
    text = metrics.REGISTRY.render()
    for decision in ("allow", "audit", "approve", "block"):
        assert f'wireproxy_statements_total{{decision="{decision}"}}' in text
