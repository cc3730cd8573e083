"""The login limiter with a fake clock: free failures, doubling, the cap, forgetting, memory."""

from __future__ import annotations

import pytest

from wireproxy.auth.limiter import LoginLimiter, host_of


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def limiter(clock, **kwargs) -> LoginLimiter:
    return LoginLimiter(clock=clock, **kwargs)


def test_free_failures_then_doubling_up_to_the_cap(clock):
    lim = limiter(clock)
    delays = []
    for _ in range(10):
        delays.append(lim.delay("10.0.0.1:5000"))
        lim.failed("10.0.0.1:5000")
    assert delays == [0, 0, 0, 0, 0.5, 1, 2, 4, 8, 10]
    assert lim.delay("10.0.0.1:5000") == 10


def test_keyed_by_host_not_port(clock):
    lim = limiter(clock, free_failures=0)
    for port in range(40000, 40004):
        lim.failed(f"192.0.2.7:{port}")
    assert lim.delay("192.0.2.7:1") == 4 and lim.delay(("192.0.2.7", 2)) == 4
    assert lim.delay("192.0.2.8:40000") == 0
    lim.failed("[2001:db8::1]:5432")
    lim.failed("2001:db8::1")
    assert lim.delay(("2001:db8::1", 5432, 0, 0)) == 1 and len(lim) == 2


@pytest.mark.parametrize("address, host", [
    ("127.0.0.1:5432", "127.0.0.1"), ("[::1]:5432", "::1"), ("::1", "::1"), ("localhost", "localhost"),
    (("127.0.0.1", 1), "127.0.0.1"), ("[::1", "[::1"), ((), ""),
])
def test_host_of(address, host):
    assert host_of(address) == host


def test_an_address_quiet_for_the_window_is_forgotten(clock):
    lim = limiter(clock, free_failures=0, window=300)
    for _ in range(5):
        lim.failed("h:1")
    assert lim.delay("h:1") == 8
    clock.now += 299
    assert lim.delay("h:1") == 8
    lim.failed("h:1")                           # a failure restarts the window
    clock.now += 299
    assert lim.delay("h:1") == 10
    clock.now += 1
    assert lim.delay("h:1") == 0 and len(lim) == 0
    lim.failed("h:1")
    assert lim.delay("h:1") == 0.5              # counting starts again


def test_success_forgives(clock):
    lim = limiter(clock, free_failures=1)
    for _ in range(4):
        lim.failed("h:1")
    assert lim.delay("h:1") > 0
    lim.succeeded("h:2")
    assert lim.delay("h:1") == 0 and len(lim) == 0
    lim.succeeded("never-seen:1")


def test_memory_is_bounded_and_the_oldest_goes_first(clock):
    lim = limiter(clock, free_failures=0, max_tracked=3)
    for i in range(3):
        lim.failed(f"10.0.0.{i}:1")
        clock.now += 1
    lim.failed("10.0.0.0:1")                    # refreshed: now the newest
    lim.failed("10.0.0.9:1")                    # a fourth: 10.0.0.1 failed longest ago
    assert len(lim) == 3
    assert lim.delay("10.0.0.1:1") == 0
    assert lim.delay("10.0.0.0:1") == 1 and lim.delay("10.0.0.2:1") == 0.5


def test_a_spray_of_addresses_stays_bounded(clock):
    lim = limiter(clock, max_tracked=100)
    for i in range(5000):
        lim.failed(f"198.51.{i // 256}.{i % 256}:1")
    assert len(lim) == 100


def test_quiet_addresses_are_dropped_as_new_failures_come(clock):
    lim = limiter(clock, window=10)
    lim.failed("old:1")
    clock.now += 11
    lim.failed("new:1")
    assert len(lim) == 1


def test_huge_failure_counts_stay_at_the_cap(clock):
    lim = limiter(clock, max_delay=10)
    for _ in range(5000):
        lim.failed("h:1")
    assert lim.delay("h:1") == 10


@pytest.mark.parametrize("kwargs", [
    {"free_failures": -1}, {"base_delay": -1}, {"max_delay": 0.1, "base_delay": 1}, {"window": 0},
    {"max_tracked": 0},
])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        LoginLimiter(**kwargs)
