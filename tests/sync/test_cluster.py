"""The edge against a three-node JetStream cluster with R3 streams, given the seed list: kill -9
of the node it is connected to, while bets go on, loses and duplicates nothing and the edge keeps
syncing through the other two."""
from __future__ import annotations

import asyncio
from urllib.parse import urlparse

import nats
import nats.errors
import nats.js.errors
import pytest

from contract import sync as S
from edge_agent.sync.service import SyncService
from tests.support.nats import NatsCluster
from tests.sync.conftest import (
    PROFILE,
    Bettors,
    check_exactly_once,
    edge_config,
    fund,
    read_stream,
    shutdown,
    start_casino,
    until,
)


@pytest.fixture
def cluster(tmp_path):
    c = NatsCluster(tmp_path / "cluster").start()
    yield c
    c.stop()


def test_seed_list_config_forms():
    from edge_agent.config import NatsConfig

    assert NatsConfig(url="nats://a:1, nats://b:2").servers == ["nats://a:1", "nats://b:2"]
    assert NatsConfig(url=["nats://a:1", "nats://b:2"]).servers == ["nats://a:1", "nats://b:2"]
    assert NatsConfig().servers == []


async def test_kill_the_connected_node_under_load(tmp_path, cluster):
    cfg = edge_config(tmp_path, cluster.seeds, nats={"url": cluster.seeds, "heartbeat_s": 0.5,
                                                      "stream_replicas": 3})
    c = await start_casino(cfg)
    sync = SyncService(c, cfg, ensure_streams=True, ack_timeout=2.0, max_backoff=0.5)
    await sync.start()
    players = [c.ensure_player(f"p{i}", PROFILE) for i in range(4)]
    for i, psn in enumerate(players):
        await fund(c, psn, 1_000_000, f"d{i}")
    await until(lambda: sync.connected and sync.sent_seq > 0, what="first entries synced")

    nc = await nats.connect(cluster.seeds)
    info = await nc.jetstream(timeout=30).stream_info(S.JOURNAL_STREAM)
    assert info.config.num_replicas == 3 and len(info.cluster.replicas or []) == 2
    await nc.close()

    bettors = Bettors(c, players, 0.002)
    await asyncio.sleep(0.5)
    port = urlparse(f"nats://{sync.connected_url}").port
    victim = next(i for i, n in enumerate(cluster.nodes) if n.port == port)
    cluster.kill(victim)
    sent_at_kill, bets_at_kill = sync.sent_seq, bettors.count
    # the edge fails over to a surviving node and keeps syncing while the node is down
    await until(lambda: sync.sent_seq > sent_at_kill + 50 and bettors.count > bets_at_kill + 50, timeout=90,
                what="syncing through the surviving nodes")
    await bettors.stop()
    await until(lambda: sync.sent_seq == c.store.durable_seq, timeout=90, what="drained")
    await shutdown(c, sync)
    cluster.start_node(victim)  # rejoins and catches up: the copy read below is the restarted node's
    await asyncio.to_thread(cluster.wait_streams_current, [S.JOURNAL_STREAM])
    assert sync.sent_seq == c.store.seq
    for attempt in range(5):  # an API request may time out, or find JetStream unavailable (503),
        try:                  # while a loaded box re-elects the restarted node's stream leaders
            got = [e for e, _ in await read_stream(cluster.seeds[victim], "mt-1")]
            break
        except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError):
            if attempt == 4:
                raise
            await asyncio.sleep(2)
    check_exactly_once(got, c.store.seq, c.store.head)
