"""The publisher's own process: kill -9 of it mid-stream while bets go on, the edge starts
another, and the stream still holds every entry exactly once, ending at the edge's head; the
edge's /healthz and /metrics say what happened (the edge serves them: it owns the lag and
supervises the publisher)."""
from __future__ import annotations

import os
import signal

import httpx

from edge_agent.runtime import Edge
from tests.sync.conftest import (
    PROFILE,
    Bettors,
    bet_when_open,
    check_exactly_once,
    edge_config,
    fund,
    read_stream,
    until,
)


def _metric(text: str, name: str, edge: str = "mt-1") -> float:
    line = next(x for x in text.splitlines() if x.startswith(f'{name}{{edge="{edge}"}}'))
    return float(line.rsplit(" ", 1)[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_kill9_of_the_publisher_mid_stream_loses_and_duplicates_nothing(tmp_path, nats_server):
    cfg = edge_config(tmp_path, nats_server.url, nats={"url": nats_server.url, "heartbeat_s": 0.5,
                                                       "ensure_streams": True})
    edge = Edge(cfg)
    await edge.start()
    c, sync = edge.casino, edge.sync
    assert sync is not None
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=edge.app), base_url="http://edge")

    async def healthz() -> dict:
        return (await http.get("/healthz")).json()["checks"]["sync"]["detail"]

    try:
        players = [c.ensure_player(f"p{i}", PROFILE) for i in range(4)]
        for i, psn in enumerate(players):
            await fund(c, psn, 10_000_000, f"d{i}")
        await until(lambda: sync.connected and sync.sent_seq > 0, what="first entries synced")
        first = (await healthz())["publisher"]
        assert first["up"] and first["restarts"] == 0 and _alive(first["pid"])
        assert first["pid"] != os.getpid()  # its own process

        bettors = Bettors(c, players, 0.002)
        await until(lambda: bettors.count > 200, what="bets flowing")
        # mid-stream: entries are in flight (published, not all acknowledged) when it dies
        await until(lambda: sync.lag > 0, timeout=10, what="entries in flight")
        sent_at_kill, bets_at_kill = sync.sent_seq, bettors.count
        os.kill(first["pid"], signal.SIGKILL)
        await until(lambda: sync.restarts == 1, timeout=10, what="the edge saw its publisher die")
        await until(lambda: sync.connected and sync.sent_seq > sent_at_kill + 100, timeout=30,
                    what="the new publisher resumed")
        assert bettors.count > bets_at_kill, "bets stopped while the publisher was down"
        again = (await healthz())["publisher"]
        assert again["up"] and again["restarts"] == 1 and again["pid"] != first["pid"] and _alive(again["pid"])
        assert not _alive(first["pid"])
        metrics = (await http.get("/metrics")).text
        assert _metric(metrics, "casino_sync_publisher_restarts_total") >= 1
        assert _metric(metrics, "casino_sync_publisher_up") == 1
        assert _metric(metrics, "casino_sync_lag_entries") >= 0

        await bettors.stop()
        await until(lambda: sync.sent_seq == c.store.durable_seq, timeout=30, what="drained")
    finally:
        await edge.stop()
        await http.aclose()
    assert sync.sent_seq == c.store.seq  # the shutdown's own entries too
    assert not _alive(again["pid"])  # stopped with the edge
    got = [e for e, _ in await read_stream(nats_server.url, "mt-1")]
    assert len(got) == c.store.seq  # count equal: nothing lost, nothing stored twice
    check_exactly_once(got, c.store.seq, c.store.head)


async def test_publisher_down_is_reported_and_bets_go_on(tmp_path, nats_server):
    """While the edge waits to restart its publisher, /healthz says so (still ok: bets go on)
    and the lag grows; the new one drains it."""
    cfg = edge_config(tmp_path, nats_server.url, nats={"url": nats_server.url, "heartbeat_s": 0.5,
                                                       "ensure_streams": True})
    edge = Edge(cfg)
    edge.sync.restart_backoff = 3.0  # type: ignore[union-attr]
    await edge.start()
    c, sync = edge.casino, edge.sync
    assert sync is not None
    try:
        psn = c.ensure_player("alice", PROFILE)
        await fund(c, psn, 100_000, "d1")
        await until(lambda: sync.connected and sync.lag == 0, what="in sync")
        pid = sync.publisher_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await until(lambda: sync.restarts == 1, timeout=10, what="publisher death seen")
        ok, detail = sync.health()
        assert ok and detail["state"] == "publisher_down" and not detail["connected"]
        assert detail["publisher"]["up"] is False
        for _ in range(3):
            await bet_when_open(c, psn)
        assert sync.lag > 0
        await until(lambda: sync.publisher_pid != pid and sync.lag == 0, timeout=20, what="restarted and drained")
    finally:
        await edge.stop()
    got = [e for e, _ in await read_stream(nats_server.url, "mt-1")]
    check_exactly_once(got, c.store.seq, c.store.head)
