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
models = pytest.importorskip("control_plane.db.models")


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
        assert sync.commands_applied >= 1

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
