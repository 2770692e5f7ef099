"""A partition while bets go on: afterwards the stream holds every entry exactly once."""
from __future__ import annotations

import asyncio
import time

import pytest

from edge_agent.sync.service import SyncService
from tests.support.nats import NatsServer
from tests.sync.conftest import (
    PROFILE,
    Bettors,
    TcpProxy,
    bet_when_open,
    check_exactly_once,
    edge_config,
    fund,
    read_stream,
    shutdown,
    start_casino,
    until,
)


async def _partition(tmp_path, nats_server, mode: str, seconds: float) -> None:
    proxy = await TcpProxy(nats_server.port).start()
    cfg = edge_config(tmp_path, proxy.url if mode != "kill9" else nats_server.url)
    c = await start_casino(cfg)
    sync = SyncService(c, cfg, ensure_streams=True, ack_timeout=2.0, max_backoff=1.0)
    await sync.start()
    players = [c.ensure_player(f"p{i}", PROFILE) for i in range(4)]
    for i, psn in enumerate(players):
        await fund(c, psn, 1_000_000, f"d{i}")
    await until(lambda: sync.connected and sync.sent_seq > 0, what="first entries synced")

    bettors = Bettors(c, players, 0.005)
    await asyncio.sleep(0.5)
    sent_before = sync.sent_seq
    if mode == "kill9":
        nats_server.kill()
    elif mode == "cut":
        proxy.cut()
    else:
        proxy.blackhole()
    bets_at_cut = bettors.count
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        await asyncio.sleep(0.2)
    if mode != "blackhole":  # a silent stall may take a few pings to notice; a cut is seen at once
        assert not sync.connected
    assert bettors.count > bets_at_cut, "bets stopped during the partition"
    assert c.store.durable_seq > sync.sent_seq  # a backlog built up
    if mode == "kill9":
        nats_server.start()
    else:
        proxy.restore()
    await until(lambda: sync.sent_seq == c.store.durable_seq, timeout=60, what="backlog drained")
    assert sync.sent_seq > sent_before
    await bettors.stop()
    await shutdown(c, sync)
    await proxy.close()
    assert sync.sent_seq == c.store.seq  # shutdown's own entries drained too
    got = [e for e, _ in await read_stream(nats_server.url, "mt-1")]
    check_exactly_once(got, c.store.seq, c.store.head)


@pytest.mark.parametrize("mode", ["kill9", "cut", "blackhole"])
async def test_partition_short(tmp_path, nats_server, mode):
    await _partition(tmp_path, nats_server, mode, 5.0)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["kill9", "blackhole"])
async def test_partition_60s(tmp_path, nats_server, mode):
    await _partition(tmp_path, nats_server, mode, 60.0)


async def test_edge_starts_and_takes_bets_with_nats_down(tmp_path):
    srv = NatsServer(tmp_path / "nats")  # not started yet: the WAN is down when the edge boots
    cfg = edge_config(tmp_path, srv.url)
    c = await start_casino(cfg)
    sync = SyncService(c, cfg, ensure_streams=True, max_backoff=0.5)
    await sync.start()
    psn = c.ensure_player("alice", PROFILE)
    await fund(c, psn, 10_000, "d1")
    for _ in range(3):
        await bet_when_open(c, psn)
    assert not sync.connected and sync.sent_seq == 0 and sync.lag == c.store.durable_seq
    assert sync.health()[0]  # a link down is not an edge failure
    srv.start()
    try:
        await until(lambda: sync.sent_seq == c.store.durable_seq, what="drained after the link came up")
        await shutdown(c, sync)
        got = [e for e, _ in await read_stream(srv.url, "mt-1")]
        check_exactly_once(got, c.store.seq, c.store.head)
    finally:
        srv.stop()
