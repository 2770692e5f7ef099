"""Benchmark: edge -> cloud sync lag at a steady journal rate.

    python -m benchmarks.sync.lag [--rate 2000] [--duration 25] [--database-url URL]

One process is the edge (the real `Casino` and its `SyncService`, journal on disk with
`synchronous=FULL`); the control plane is `control-plane serve` in another process (SQLite by
default); a private nats-server with JetStream on a free port between them. Bets are placed at a
steady `--rate` per second on an open round (long betting window, funded players): each bet is one
journal entry. For each entry the edge records when it became durable (the moment `Casino.bet`
would return); a probe asks the control plane for the contiguous seq it has applied
(`casino.hwm.<edge>`, answered from its database) every `--poll-ms`, and an entry counts as
applied in the cloud at the first answer that covers it (an upper bound: at most one poll interval
plus one round trip late). Lag = applied - committed, over the entries after `--warmup` seconds.

Prints the CONTRACT benchmark JSON line last: {"bench": "sync_lag", "p50_ms": ..., "p99_ms": ...}.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.sync.harness import (
    Cloud,
    CpuMeter,
    load1,
    machine,
    pct,
    private_cloud,
)
from contract import sync as S
from edge_agent.casino import Casino
from edge_agent.config import EdgeConfig
from edge_agent.sync.service import SyncService

EDGE = "bench-lag"
TABLE = "roulette-1"
SPOTS = ["red", "black", "odd", "even", "low", "high"]


def edge_config(tmp: Path, nats_url: str) -> EdgeConfig:
    huge = {"min_bet": 100, "max_bet_per_spot": 10**12, "max_per_round": 10**12}
    return EdgeConfig(edge_id=EDGE, jurisdiction="MT", db_path=tmp / "journal.db", residency_key_hex="00" * 32,
                      tables=[{"table_id": TABLE, "game": "roulette", "betting_window_s": 3600, "reveal_s": 0.1,
                               "limits": huge}],
                      nats={"url": nats_url, "heartbeat_s": 1.0})


async def run_edge(tmp: Path, nats_url: str, rate: float, duration: float, warmup: float, poll_ms: float,
                   players: int, meter: CpuMeter) -> dict[str, Any]:
    cfg = edge_config(tmp, nats_url)
    c = Casino(cfg)
    await c.start(run_tables=False)
    psns = [c.ensure_player(f"lag-player-{i}") for i in range(players)]
    for i, psn in enumerate(psns):
        await c.apply_command(S.DepositCredit(id=f"fund-{i}", ts=0, deposit_id=f"fund-{i}", player=psn,
                                              amount=10**11, currency="EUR"))
    sync = SyncService(c, cfg)  # the control plane owns the streams
    cloud = await Cloud(nats_url, EDGE).connect()
    try:
        await cloud.wait_ready()
        await sync.start()
        c.open_round(TABLE)
        await c.store.durable(c.store.seq)
        deadline = time.monotonic() + 60
        while await cloud.head() < c.store.durable_seq:  # the cloud is caught up before the clock starts
            if time.monotonic() > deadline:
                raise RuntimeError(f"cloud never caught up: {sync.health()}")
            await asyncio.sleep(0.05)

        committed: dict[int, float] = {}
        applied: dict[int, float] = {}
        acked: dict[int, float] = {}  # JetStream acknowledged the publish (the edge's part of the lag)
        stop = asyncio.Event()
        poll_s = poll_ms / 1000

        async def probe() -> None:
            seen = await cloud.head()
            sent = sync.sent_seq
            while True:
                t_next = time.monotonic() + poll_s
                now = time.time()
                for s in range(sent + 1, sync.sent_seq + 1):
                    acked[s] = now
                sent = max(sent, sync.sent_seq)
                head = await cloud.head()
                now = time.time()
                for s in range(seen + 1, head + 1):
                    applied[s] = now
                seen = max(seen, head)
                if stop.is_set() and seen >= c.store.durable_seq:
                    return
                await asyncio.sleep(max(0.0, t_next - time.monotonic()))

        def on_durable(seq: int) -> Any:
            def cb(err: BaseException | None) -> None:
                if err is None:
                    committed[seq] = time.time()
            return cb

        probe_task = asyncio.create_task(probe())
        meter.start()
        meter.add("edge_publisher", sync.publisher_pid)  # its own process since 2026-12-01
        t0 = time.monotonic()
        placed = 0
        i = 0
        measured_from = 0
        while True:
            elapsed = time.monotonic() - t0
            if elapsed >= duration:
                break
            if not measured_from and elapsed >= warmup:
                measured_from = c.store.seq + 1
            due = int(elapsed * rate) - placed
            for _ in range(due):
                psn = psns[i % players]
                e, _ = c.place_bet(psn, TABLE, SPOTS[i % len(SPOTS)], 100, player_seed=f"{i:08x}")
                c.store.when_durable(e["seq"], on_durable(e["seq"]))
                i += 1
            placed += due
            await asyncio.sleep(0.002)
        wall = time.monotonic() - t0
        meter.stop()
        last = c.store.seq
        await c.store.durable(last)
        stop.set()
        await asyncio.wait_for(probe_task, 60)
        lags = [(applied[s] - committed[s]) * 1000 for s in range(measured_from, last + 1)
                if s in committed and s in applied]
        pub = [(acked[s] - committed[s]) * 1000 for s in range(measured_from, last + 1)
               if s in committed and s in acked]
        missing = sum(1 for s in range(measured_from, last + 1) if s in committed and s not in applied)
        health = sync.health()[1]
    finally:
        await c.stop()
        await sync.stop()
        c.close()
        await cloud.close()
    return {"rate_per_s": rate, "achieved_per_s": round(placed / wall), "entries": len(lags),
            "p50_ms": round(pct(lags, 0.50), 1), "p99_ms": round(pct(lags, 0.99), 1),
            "max_ms": round(max(lags), 1) if lags else None, "unapplied": missing, "poll_ms": poll_ms,
            "publish_p50_ms": round(pct(pub, 0.50), 1), "publish_p99_ms": round(pct(pub, 0.99), 1),
            "sync_state": health["state"], **meter.per_entry_us(placed)}


def run(rate: float = 2000, duration: float = 25, warmup: float = 3, poll_ms: float = 5, players: int = 200,
        database_url: str | None = None, fetch_batch: int | None = None, profile_cp: Path | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"bench": "sync_lag", **machine()}
    with tempfile.TemporaryDirectory(prefix="sync-lag-") as d:
        tmp = Path(d)
        with private_cloud(tmp, database_url, fetch_batch, profile_cp) as (srv, meter, kind):
            res = asyncio.run(run_edge(tmp, srv.url, rate, duration, warmup, poll_ms, players, meter))
    out.update(res)
    out["database"] = kind
    out["load1_at_end"] = load1()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=2000, help="journal entries (bets) per second")
    ap.add_argument("--duration", type=float, default=25)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--poll-ms", type=float, default=5)
    ap.add_argument("--players", type=int, default=200)
    ap.add_argument("--database-url", default=None,
                    help="control plane database (default: SQLite in a temp dir); a PostgreSQL URL gets a "
                         "throw-away database on that server, dropped afterwards")
    ap.add_argument("--fetch-batch", type=int, default=None, help="override the control plane's nats.fetch_batch")
    ap.add_argument("--profile-cp", type=Path, default=None, help="run the control plane under cProfile to FILE")
    a = ap.parse_args()
    print(json.dumps(run(a.rate, a.duration, a.warmup, a.poll_ms, a.players, a.database_url, a.fetch_batch,
                         a.profile_cp)))


if __name__ == "__main__":
    main()
