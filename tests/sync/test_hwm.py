"""After a restore the journal may be behind the cloud: never fork; reconcile when possible."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import nats
import pytest

from contract import sync as S
from edge_agent.casino import Casino
from edge_agent.domain.errors import DomainError
from edge_agent.sync.reconcile import reconcile_from_cloud
from edge_agent.sync.service import BEHIND, FORKED, KV_SENT, JournalConflict, SyncService
from tests.sync.conftest import (
    PROFILE,
    bet_when_open,
    check_exactly_once,
    edge_config,
    fund,
    read_stream,
    shutdown,
    start_casino,
    until,
)


def snapshot(src: Path, dst: Path) -> None:
    """What a replica holds: a consistent copy taken while the edge runs."""
    s, d = sqlite3.connect(src), sqlite3.connect(dst)
    s.backup(d)
    s.close()
    d.close()


async def primary_then_snapshot(tmp: Path, url: str, **cfg_kw) -> tuple[Path, int]:
    """Run an edge, snapshot its journal half-way, run on; returns (snapshot, cloud head)."""
    cfg = edge_config(tmp / "primary", url, **cfg_kw)
    c = await start_casino(cfg)
    sync = SyncService(c, cfg, ensure_streams=True)
    await sync.start()
    psn = c.ensure_player("alice", PROFILE)
    await fund(c, psn, 100_000, "d1")
    for _ in range(3):
        await bet_when_open(c, psn)
    snap = tmp / "restored" / "j.db"
    snap.parent.mkdir(parents=True)
    snapshot(cfg.db_path, snap)
    await fund(c, psn, 5_000, "d-lost")  # lands in the cloud, not in the replica
    for _ in range(3):
        await bet_when_open(c, psn)
    await shutdown(c, sync)
    assert sync.sent_seq == c.store.seq
    return snap, c.store.seq


OUT_OF_SYNC = "edge_out_of_sync"  # the journal's write fence (JournalStore.fence)


async def test_restored_journal_behind_the_cloud_is_fenced(tmp_path, nats_server):
    snap, cloud_head = await primary_then_snapshot(tmp_path, nats_server.url)
    cfg = edge_config(tmp_path / "restored", nats_server.url, db_path=snap)
    c = await start_casino(cfg)  # started without reconcile: it even appended already
    psn = c.pseudonym("alice")
    assert c.store.seq < cloud_head
    sync = SyncService(c, cfg, conflict_recheck_s=0.5)
    await sync.start()
    await until(lambda: sync.conflict is not None, what="conflict detected")
    assert sync.state in (BEHIND, FORKED)
    ok, detail = sync.health()
    assert not ok and detail["conflict"]
    with pytest.raises(DomainError) as err:
        await c.bet(psn, "roulette-1", "red", 100)
    assert err.value.code in (OUT_OF_SYNC, "betting_closed")
    with pytest.raises(DomainError) as err:
        c.request_deposit(psn, 100)
    assert err.value.code == OUT_OF_SYNC and err.value.status == 503
    seq = c.store.seq
    # nothing of the restored journal was published over the cloud's entries
    got = await read_stream(nats_server.url, "mt-1")
    assert len(got) == cloud_head
    assert sync.published == 0  # (its seqs would have come back "duplicate" and passed for sent)
    assert c.store.seq == seq
    await sync.stop()
    c.store.unfence()
    await c.stop()
    c.close()


async def test_reconcile_imports_what_the_cloud_holds_then_sync_continues(tmp_path, nats_server):
    snap, cloud_head = await primary_then_snapshot(tmp_path, nats_server.url)
    cfg = edge_config(tmp_path / "restored", nats_server.url, db_path=snap)
    res = await reconcile_from_cloud(cfg)
    assert res.action == "imported" and res.cloud_seq == cloud_head and res.imported > 0
    c = await start_casino(cfg)  # replays the imported entries (hash chain checked on replay)
    psn = c.pseudonym("alice")
    assert c.state.deposits.get("d-lost") == "credited"  # the lost deposit is back in the balance
    sync = SyncService(c, cfg)
    await sync.start()
    await bet_when_open(c, psn)
    await until(lambda: sync.sent_seq == c.store.durable_seq, what="continued")
    assert sync.conflict is None and sync.duplicates == 0
    await shutdown(c, sync)
    got = [e for e, _ in await read_stream(nats_server.url, "mt-1")]
    check_exactly_once(got, c.store.seq, c.store.head)
    # a second run finds nothing to do
    assert (await reconcile_from_cloud(cfg)).action == "in_sync"


async def test_reconcile_refuses_a_fork(tmp_path, nats_server):
    snap, _ = await primary_then_snapshot(tmp_path, nats_server.url)
    cfg = edge_config(tmp_path / "restored", nats_server.url, db_path=snap)
    c = Casino(cfg)  # started on the stale journal: its new entries fork from the cloud's
    await c.start()
    await c.stop()
    c.close()
    with pytest.raises(JournalConflict):
        await reconcile_from_cloud(cfg)


async def test_reconcile_refuses_redacted_entries(tmp_path, nats_server):
    strict = {"allow_kinds": ["*"], "redact_fields": {"bet.placed": ["player_seed"]}}
    snap, _ = await primary_then_snapshot(tmp_path, nats_server.url, residency=strict)
    cfg = edge_config(tmp_path / "restored", nats_server.url, db_path=snap, residency=strict)
    with pytest.raises(JournalConflict, match="in-country"):
        await reconcile_from_cloud(cfg)


async def test_reconcile_without_cloud_starts_on_local_journal(tmp_path):
    cfg = edge_config(tmp_path, "nats://127.0.0.1:1")
    res = await reconcile_from_cloud(cfg, timeout=0.5)
    assert res.action == "unreachable"


async def test_control_plane_hwm_protocol(tmp_path, nats_server):
    """A stand-in control plane answers on casino.hwm.<edge>: the high-water mark, and entries
    from a seq on. The edge skips what the control plane already applied, and reconciles from it."""
    snap, cloud_head = await primary_then_snapshot(tmp_path, nats_server.url)
    stored = {e["seq"]: e for e, _ in await read_stream(nats_server.url, "mt-1")}
    requests: list[bytes] = []
    cp = await nats.connect(nats_server.url)

    async def answer(msg) -> None:
        requests.append(msg.data)
        top = max(stored)
        hwm = {"edge_id": "mt-1", "seq": top, "hash": stored[top]["hash"]}
        if msg.data:
            q = json.loads(msg.data)
            hwm["entries"] = [stored[s] for s in range(q["from_seq"], min(top, q["from_seq"] + q["limit"] - 1) + 1)]
        await msg.respond(json.dumps(hwm).encode())

    await cp.subscribe(S.hwm_subject("mt-1"), cb=answer)
    cfg = edge_config(tmp_path / "restored", nats_server.url, db_path=snap)
    res = await reconcile_from_cloud(cfg)
    assert res.action == "imported" and res.source == "control_plane" and res.cloud_seq == cloud_head
    assert any(r and json.loads(r)["from_seq"] > 1 for r in requests)

    # The kv mark is behind (it came with the snapshot): the control plane's mark is trusted.
    c = Casino(cfg)
    c.store.side_write([("INSERT OR REPLACE INTO kv VALUES (?, ?)", (KV_SENT, "1"))])
    c.store.flush()
    await c.start(run_tables=False)
    sync = SyncService(c, cfg)
    await sync.start()
    await until(lambda: sync.sent_seq == c.store.durable_seq, what="caught up")
    assert sync.sent_seq >= cloud_head and sync.duplicates == 0  # nothing the cloud had was re-sent
    await sync.stop()
    await c.stop()
    c.close()
    await cp.close()


async def test_first_start_without_control_plane_or_stream_is_in_sync(tmp_path, nats_server):
    """A new edge whose NATS has no journal stream yet and no control plane: start at once."""
    import time

    cfg = edge_config(tmp_path / "new", nats_server.url)
    t0 = time.monotonic()
    res = await reconcile_from_cloud(cfg, timeout=2.0)
    assert res.action == "in_sync" and res.cloud_seq == 0 and res.source == "stream"
    assert time.monotonic() - t0 < 2.0  # answered, not waited out
