"""The pieces of `workers = N` that need no second process: the setting, the port reservation,
the metrics sum and a cancel handed between two registries over a real Unix socket."""

from __future__ import annotations

import os
import socket

import pytest
import trio

from protocols.postgres import CancelRequest
from wireproxy.cli.serve import config_from_args
from wireproxy.config import Config, ConfigError, load_config, parse_address
from wireproxy.config.settings import parse_workers, workers_problem
from wireproxy.pg.cancel import CancelRegistry
from wireproxy.workers.siblings import Siblings, sum_metrics
from wireproxy.workers.sockets import ReserveError, reserve_ports


def test_workers_setting(tmp_path):
    assert parse_workers(3) == 3 and parse_workers("4") == 4
    assert parse_workers("auto") == (os.cpu_count() or 1)
    for bad in (0, -1, 257, True, "many", "2.5"):
        with pytest.raises(ValueError, match="workers"):
            parse_workers(bad)
    path = tmp_path / "wireproxy.toml"
    path.write_text('shutdown_grace = 1\nworkers = "lots"\n')
    with pytest.raises(ConfigError, match=r"wireproxy.toml:2: workers must be a positive integer"):
        load_config(path)
    path.write_text("workers = 2\n")
    assert load_config(path).workers == 2
    assert Config.defaults().workers == 1


def test_memory_approvals_with_an_admin_listener_refuse_workers(tmp_path):
    path = tmp_path / "wireproxy.toml"
    path.write_text('workers = 2\n[admin]\nlisten = "127.0.0.1:0"\n')
    with pytest.raises(ConfigError, match=r"wireproxy.toml:1: .*store = \"postgres\""):
        load_config(path)
    config = Config.defaults()
    config.admin.listen = parse_address("127.0.0.1:0")
    assert workers_problem(config) is None          # one process: the memory store is fine
    config.workers = 2
    assert "memory store lives in one process" in workers_problem(config)
    config.approvals.store = "postgres"
    assert workers_problem(config) is None


def test_the_flag_overrides_the_file(tmp_path):
    from wireproxy.cli import build_parser
    from wireproxy.cli.errors import UsageError
    args = build_parser().parse_args(["serve", "--workers", "3"])
    assert config_from_args(args).workers == 3
    args = build_parser().parse_args(["serve", "--workers", "2", "--admin", "127.0.0.1:0"])
    with pytest.raises(UsageError, match="approvals"):
        config_from_args(args)


def test_port_zero_becomes_one_shared_port():
    config = Config.defaults()
    config.postgres[0].listen = parse_address("127.0.0.1:0")
    [port] = reserve_ports(config)
    try:
        [(host, number)] = port.bound
        assert host == "127.0.0.1" and number != 0
        first, second = port.listening_sockets(), port.listening_sockets()
        assert first[0].getsockname() == second[0].getsockname() == (host, number)
        for sock in first + second:
            sock.close()
        with pytest.raises(ConnectionRefusedError):      # the anchor itself takes no connection
            socket.create_connection((host, number), timeout=5).close()
        plain = socket.socket()                          # without SO_REUSEPORT: refused
        with pytest.raises(OSError):
            plain.bind((host, number))
        plain.close()
    finally:
        port.close()


def test_a_port_in_use_is_one_clear_error():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    config = Config.defaults()
    config.postgres[0].listen = parse_address(f"127.0.0.1:{holder.getsockname()[1]}")
    try:
        with pytest.raises(ReserveError, match="cannot listen on 127.0.0.1:"):
            reserve_ports(config)
    finally:
        holder.close()


def test_sum_metrics_adds_every_series():
    one = '# HELP a_total A.\n# TYPE a_total counter\na_total{p="x"} 2\na_total{p="y"} 1\n# HELP g G.\n# TYPE g gauge\ng 1.5\n'
    two = '# HELP a_total A.\n# TYPE a_total counter\na_total{p="x"} 3\n# HELP g G.\n# TYPE g gauge\ng 1\n'
    assert sum_metrics([one, two]) == ('# HELP a_total A.\n# TYPE a_total counter\na_total{p="x"} 5\n'
                                       'a_total{p="y"} 1\n# HELP g G.\n# TYPE g gauge\ng 2.5\n')


async def test_an_unknown_key_is_cancelled_by_the_sibling_that_knows_it(tmp_path):
    upstream = parse_address("127.0.0.1:9")
    owner, asker = CancelRegistry(), CancelRegistry()
    withdrawn = []
    owner.add(42, b"right-secret", upstream, intercept=lambda: withdrawn.append(1) or True)
    ends = [Siblings(tmp_path, 1, 2), Siblings(tmp_path, 2, 2)]
    for end, registry in zip(ends, (owner, asker)):
        end.act = registry.act
        registry.siblings = end.relay_cancel
    async with trio.open_nursery() as nursery:
        for end in ends:
            await nursery.start(end.serve)
        assert not await ends[1].relay_cancel(CancelRequest(42, b"wrong-secret"))
        assert not await ends[1].relay_cancel(CancelRequest(7, b"right-secret"))
        assert withdrawn == []
        assert await ends[1].relay_cancel(CancelRequest(42, b"right-secret"))
        assert withdrawn == [1]
        assert "wireproxy_sessions_total" in "".join(await ends[0].metrics_texts())
        nursery.cancel_scope.cancel()


async def test_a_missing_sibling_knows_nothing(tmp_path):
    alone = Siblings(tmp_path, 1, 3)
    assert not await alone.relay_cancel(CancelRequest(1, b"abcd"))
    assert await alone.metrics_texts() == []
