"""The edge's SyncService against the real control plane (SQLite): a deposit round trip, a
partition while bets go on, then the cloud holds every entry exactly once at the edge's head."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from contract import sync as S
from edge_agent.sync.reconcile import reconcile_from_cloud
from edge_agent.sync.service import SyncService
from tests.sync.conftest import PROFILE, TcpProxy, bet_when_open, edge_config, shutdown, start_casino, until

runtime = pytest.importorskip("control_plane.runtime")
models = pytest.importorskip("control_plane.adapters.db.models")


async def test_round_trip_partition_and_hwm_with_control_plane(tmp_path, nats_server):
    from tests.control_plane.conftest import cp_config

    cp = runtime.ControlPlane(cp_config(tmp_path / "cp", f"sqlite:///{tmp_path / 'cp.db'}", nats_server.url))
    await cp.start()
    proxy = await TcpProxy(nats_server.port).start()
    cfg = edge_config(tmp_path / "edge", proxy.url)
    c = await start_casino(cfg)
    sync = SyncService(c, cfg)  # the control plane owns the streams
    await sync.start()
    try:
        psn = c.ensure_player("alice", PROFILE)
        c.request_deposit(psn, 50_000)  # -> cloud: PSP confirms -> DepositCredit command -> edge
        await until(lambda: c.state.cash(psn) == 50_000, timeout=60, what="deposit credited by the cloud")
        # counted once apply_command has returned (after the credit is visible in state)
        await until(lambda: sync.commands_applied >= 1, timeout=10, what="command counted as applied")

        stop = asyncio.Event()

        async def player() -> None:
            while not stop.is_set():
                await bet_when_open(c, psn, "red", 100)
                await asyncio.sleep(0.01)

        task = asyncio.create_task(player())
        await asyncio.sleep(0.5)
        proxy.cut()
        await asyncio.sleep(3)
        assert not sync.connected and sync.lag > 0
        proxy.restore()
        await until(lambda: sync.sent_seq == c.store.durable_seq, timeout=60, what="backlog drained")
        stop.set()
        await task
        await shutdown(c, sync)
        head, head_hash = c.store.seq, c.store.head

        async def cloud_hwm() -> S.HighWaterMark:
            msg = await cp.bus.nc.request(S.hwm_subject("mt-1"), b"", timeout=5)
            return S.HighWaterMark.model_validate_json(msg.data)

        for _ in range(300):
            h = await cloud_hwm()
            if h.seq == head:
                break
            await asyncio.sleep(0.05)
        assert (h.seq, h.hash) == (head, head_hash)
        with cp.engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(models.entries)
                             .where(models.entries.c.edge_id == "mt-1")).scalar()
        assert n == head  # every entry exactly once

        # A restart on this journal: the control plane says in sync.
        res = await reconcile_from_cloud(edge_config(tmp_path / "edge", nats_server.url))
        assert res.action == "in_sync" and res.source == "control_plane" and res.cloud_seq == head
    finally:
        await proxy.close()
        if c.store._thread.is_alive():
            await shutdown(c, sync)
        await cp.stop()
        cp.close_adapters()


async def test_self_exclusion_at_one_edge_blocks_the_player_at_another_within_5s(tmp_path, nats_server):
    """Two real edges and the real control plane: excluded at mt-1, refused at mt-2 in under 5 s."""
    import time

    from edge_agent.domain.errors import DomainError
    from tests.control_plane.conftest import cp_config

    cp = runtime.ControlPlane(cp_config(tmp_path / "cp", f"sqlite:///{tmp_path / 'cp.db'}", nats_server.url))
    await cp.start()
    edges = []
    try:
        for edge_id in ("mt-1", "mt-2"):
            cfg = edge_config(tmp_path / edge_id, nats_server.url, edge_id=edge_id)
            c = await start_casino(cfg)
            sync = SyncService(c, cfg)
            await sync.start()
            edges.append((c, sync))
        (a, _), (b, _) = edges
        psn = a.ensure_player("alice", PROFILE)
        assert b.ensure_player("alice", PROFILE) == psn  # one pseudonym across the operator's edges
        for c in (a, b):
            await fund_via(c, psn)
        # both edges known to the cloud (heartbeats register them), then the exclusion
        await until(lambda: len(cp.registry.list()) == 2, what="both edges registered")
        await bet_when_open(b, psn)  # allowed before
        t0 = time.monotonic()
        a.exclude(psn, "self_exclusion", "6m")
        refused_at = None
        while time.monotonic() - t0 < 10:
            try:
                await bet_when_open(b, psn)
            except DomainError as err:
                if err.code == "player_excluded":
                    refused_at = time.monotonic() - t0
                    break
            await asyncio.sleep(0.05)
        assert refused_at is not None and refused_at <= 5.0, refused_at
        assert b.state.player(psn).excluded_until == a.state.player(psn).excluded_until
    finally:
        for c, sync in edges:
            await shutdown(c, sync)
        await cp.stop()
        cp.close_adapters()


async def fund_via(c, psn: str) -> None:
    from tests.sync.conftest import fund

    await fund(c, psn, 10_000, f"dep-{c.config.edge_id}")
