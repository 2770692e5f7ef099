"""Benchmark: how fast a sync backlog drains (edge journal -> JetStream -> control plane).

    python -m benchmarks.sync.drain [--entries 1000000] [--database-url URL]

A journal of at least `--entries` entries is written with the sync off (`edge-agent simulate`:
real rounds, bets and settlements through the engine; cached under /tmp/livecasino-sync-bench and
copied per run). Then, against a fresh control plane (`control-plane serve` in its own process,
SQLite by default) and a fresh private nats-server, the edge (the real `Casino` on that journal and
its `SyncService`, in this process, with its publisher process) starts syncing, and the clock runs from `SyncService.start()`
until the control plane's high-water mark (`casino.hwm.<edge>`, read from its database) reaches
the journal's head with the same hash. The publish rate alone (until JetStream acknowledged the
last entry) is reported beside it.

Prints the CONTRACT benchmark JSON line last: {"bench": "sync_drain", "drain_entries_per_s": ...}.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.sync.harness import (
    Cloud,
    CpuMeter,
    load1,
    machine,
    private_cloud,
)
from contract import fairness
from edge_agent.casino import Casino
from edge_agent.config import EdgeConfig
from edge_agent.sync.service import SyncService

EDGE = "bench-drain"
CACHE = Path("/tmp/livecasino-sync-bench")
PLAYERS = 1000
SEED = 7
RESIDENCY_KEY = "5a" * 32  # edge_agent.simulate's


def journal(entries: int) -> tuple[Path, float | None]:
    """A cached simulated journal with >= `entries` entries: (path, seconds it took to build, or None)."""
    rounds = max(1, math.ceil(entries / 1500))  # ~1.5 bets per player per round, 1000 players
    path = CACHE / f"journal-r{rounds}-p{PLAYERS}-s{SEED}.db"
    if path.exists():
        return path, None
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".building")
    for p in tmp.parent.glob(tmp.name + "*"):
        p.unlink()
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "edge_agent.cli", "simulate", "--db", str(tmp), "--rounds", str(rounds),
                    "--players", str(PLAYERS), "--seed", str(SEED)], check=True, stdout=subprocess.DEVNULL)
    tmp.rename(path)
    return path, time.monotonic() - t0


def edge_config(db: Path, nats_url: str) -> EdgeConfig:
    return EdgeConfig(edge_id=EDGE, jurisdiction="SIM", db_path=db, residency_key_hex=RESIDENCY_KEY,
                      tables=[{"table_id": f"{g}-1", "game": g, "betting_window_s": 3600, "reveal_s": 0}
                              for g in fairness.GAMES],
                      nats={"url": nats_url, "heartbeat_s": 1.0})


async def run_edge(db: Path, nats_url: str, poll_s: float, timeout: float, meter: CpuMeter) -> dict[str, Any]:
    cfg = edge_config(db, nats_url)
    t_open = time.monotonic()
    c = Casino(cfg)
    await c.start(run_tables=False)
    opened_s = time.monotonic() - t_open
    head, head_hash = c.store.seq, c.store.head
    sync = SyncService(c, cfg)  # the control plane owns the streams
    cloud = await Cloud(nats_url, EDGE).connect()
    try:
        await cloud.wait_ready()
        meter.start()
        t0 = time.monotonic()
        await sync.start()
        meter.add("edge_publisher", sync.publisher_pid)  # its own process since 2026-12-01
        published_at = None
        samples: list[tuple[float, int, int]] = []
        while True:
            await asyncio.sleep(poll_s)
            now = time.monotonic() - t0
            cloud_seq = await cloud.head(timeout=10)
            samples.append((now, sync.sent_seq, cloud_seq))
            if published_at is None and sync.sent_seq >= head:
                published_at = now
            if cloud_seq >= head:
                drained_at = now
                meter.stop()
                break
            if now > timeout:
                raise RuntimeError(f"not drained in {timeout}s: cloud at {cloud_seq}/{head}, {sync.health()}")
        msg = await cloud.nc.request(cloud.subject, b"", timeout=10)
        hwm = json.loads(msg.data)
    finally:
        await sync.stop()
        await c.stop()
        c.close()
        await cloud.close()
    # steady-state rate: between 10 % and 90 % of the backlog applied in the cloud
    lo = next(s for s in samples if s[2] >= head * 0.1)
    hi = next(s for s in samples if s[2] >= head * 0.9)
    steady = (hi[2] - lo[2]) / (hi[0] - lo[0]) if hi[0] > lo[0] else None
    return {"entries": head, "drain_s": round(drained_at, 2), "drain_entries_per_s": round(head / drained_at),
            "steady_entries_per_s": round(steady) if steady else None,
            "publish_s": round(published_at or drained_at, 2),
            "publish_entries_per_s": round(head / (published_at or drained_at)),
            "head_hash_ok": hwm["seq"] == head and hwm["hash"] == head_hash, "edge_open_s": round(opened_s, 1),
            **meter.per_entry_us(head)}


def run(entries: int = 1_000_000, database_url: str | None = None, fetch_batch: int | None = None,
        profile_cp: Path | None = None, poll_s: float = 0.05, timeout: float = 900) -> dict[str, Any]:
    src, built_s = journal(entries)
    out: dict[str, Any] = {"bench": "sync_drain", **machine()}
    with tempfile.TemporaryDirectory(prefix="sync-drain-") as d:
        tmp = Path(d)
        db = tmp / "journal.db"
        shutil.copyfile(src, db)
        with private_cloud(tmp, database_url, fetch_batch, profile_cp) as (srv, meter, kind):
            res = asyncio.run(run_edge(db, srv.url, poll_s, timeout, meter))
    out.update(res)
    out["database"] = kind
    if built_s is not None:
        out["journal_built_s"] = round(built_s, 1)
    out["load1_at_end"] = load1()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000, help="backlog size (at least this many entries)")
    ap.add_argument("--database-url", default=None,
                    help="control plane database (default: SQLite in a temp dir); a PostgreSQL URL gets a "
                         "throw-away database on that server, dropped afterwards")
    ap.add_argument("--fetch-batch", type=int, default=None, help="override the control plane's nats.fetch_batch")
    ap.add_argument("--profile-cp", type=Path, default=None, help="run the control plane under cProfile to FILE")
    ap.add_argument("--timeout", type=float, default=900)
    a = ap.parse_args()
    print(json.dumps(run(a.entries, a.database_url, a.fetch_batch, a.profile_cp, timeout=a.timeout)))


if __name__ == "__main__":
    main()
