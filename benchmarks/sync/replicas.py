"""Benchmark: the cloud's journal drain with N control-plane replicas on one PostgreSQL, and the
failover time when one of them is killed mid-drain.

    python -m benchmarks.sync.replicas [--replicas 2] [--edges 2] [--entries 200000] [--kill-one]

Each of `--edges` edges (the real `Casino` on a copy of the simulated journal of
benchmarks.sync.drain, and its `SyncService`, in this process) holds a backlog; against a
private nats-server and `--replicas` fresh `control-plane serve` processes on a throw-away
PostgreSQL database (journal application partitioned by edge under leases), the clock runs from
the syncs' start until the cloud holds every edge's head with its hash. CPU µs per entry are the
replicas' CPU seconds (from /proc) over the entries applied. With `--kill-one`, the replica
applying the first edge is killed (-9) when half of that edge is applied; `failover_s` is the
time until another replica holds its lease and applies it again.

Prints {"bench": "sync_replicas", ...} last.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.sync.drain import RESIDENCY_KEY, journal
from benchmarks.sync.harness import cpu_seconds, load1, machine
from contract import fairness
from control_plane.adapters.db import leases as L
from edge_agent.casino import Casino
from edge_agent.config import EdgeConfig
from edge_agent.sync.service import SyncService
from tests.support.cloud import Replica, lease_holders, pg_database, plain
from tests.support.nats import NatsServer


def head_of(url: str, edge: str) -> tuple[int, str | None]:
    import psycopg

    with psycopg.connect(plain(url), autocommit=True) as conn:
        row = conn.execute("SELECT head_seq, head_hash FROM edge_sync WHERE edge_id = %s", (edge,)).fetchone()
    return (row[0], row[1]) if row else (0, None)


async def drain(tmp: Path, src: Path, replicas: int, edges: int, kill_one: bool, timeout: float) -> dict[str, Any]:
    srv = NatsServer(tmp / "nats").start()
    rs: list[Replica] = []
    try:
        with pg_database("bench_replicas") as url:
            rs = [Replica(tmp, f"r{i + 1}", url, [srv.url], nats={"ack_wait_s": 5, "rebalance_s": 0.5})
                  for i in range(replicas)]
            rs[0].migrate()
            for r in rs:
                r.start()
            for r in rs:
                await asyncio.to_thread(r.wait_healthy)
            names = [f"bench-{i + 1}" for i in range(edges)]
            casinos, syncs = [], []
            for name in names:
                db = tmp / f"{name}.db"
                shutil.copyfile(src, db)
                cfg = EdgeConfig(edge_id=name, jurisdiction="SIM", db_path=db, residency_key_hex=RESIDENCY_KEY,
                                 tables=[{"table_id": f"{g}-1", "game": g, "betting_window_s": 3600, "reveal_s": 0}
                                         for g in fairness.GAMES], nats={"url": srv.url, "heartbeat_s": 1.0})
                c = Casino(cfg)
                await c.start(run_tables=False)
                casinos.append(c)
                syncs.append(SyncService(c, cfg))
            heads = {n: (c.store.seq, c.store.head) for n, c in zip(names, casinos)}
            total = sum(h for h, _ in heads.values())
            cpu0 = {r.name: cpu_seconds(r.proc.pid) for r in rs if r.proc}
            cpu: dict[str, float] = {}
            t0 = time.monotonic()
            for s in syncs:
                await s.start()
            failover_s = None
            killed: Replica | None = None
            t_kill, at_kill = 0.0, 0
            while True:
                await asyncio.sleep(0.1)
                now = time.monotonic() - t0
                got = {n: await asyncio.to_thread(head_of, url, n) for n in names}
                if kill_one and killed is None and got[names[0]][0] >= heads[names[0]][0] // 2:
                    holder = (await asyncio.to_thread(lease_holders, url, L.EDGE, names)).get(names[0])
                    killed = next(r for r in rs if r.name == holder)
                    assert killed.proc is not None
                    cpu[killed.name] = cpu_seconds(killed.proc.pid) - cpu0[killed.name]
                    killed.kill()
                    t_kill, at_kill = time.monotonic(), got[names[0]][0]
                if killed is not None and failover_s is None and got[names[0]][0] > at_kill:
                    failover_s = time.monotonic() - t_kill
                if all(got[n] == heads[n] for n in names):
                    drained = now
                    break
                if now > timeout:
                    raise RuntimeError(f"not drained in {timeout}s: {got} of {heads}")
            cpu.update({r.name: cpu_seconds(r.proc.pid) - cpu0[r.name] for r in rs if r.alive and r.proc})
            for s in syncs:
                await s.stop()
            for c in casinos:
                await c.stop()
                c.close()
    finally:
        for r in rs:
            r.stop()
        srv.stop()
    cpu_s = sum(cpu.values())
    out: dict[str, Any] = {"replicas": replicas, "edges": edges, "entries": total, "drain_s": round(drained, 2),
                           "drain_entries_per_s": round(total / drained),
                           "cp_cpu_us_per_entry": round(cpu_s / total * 1e6, 1),
                           "cp_cpu_s_by_replica": {k: round(v, 1) for k, v in cpu.items()}}
    if kill_one:
        out["failover_s"] = round(failover_s, 2) if failover_s is not None else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--edges", type=int, default=2)
    ap.add_argument("--entries", type=int, default=200_000, help="backlog per edge (at least)")
    ap.add_argument("--kill-one", action="store_true")
    ap.add_argument("--timeout", type=float, default=900)
    a = ap.parse_args()
    src, _ = journal(a.entries)
    out: dict[str, Any] = {"bench": "sync_replicas", "database": "postgresql", **machine()}
    with tempfile.TemporaryDirectory(prefix="sync-replicas-") as d:
        out.update(asyncio.run(drain(Path(d), src, a.replicas, a.edges, a.kill_one, a.timeout)))
    out["load1_at_end"] = load1()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
