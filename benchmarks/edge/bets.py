"""Benchmark: durable bets per second and ack latency over WebSocket and HTTP, against a real
edge process on loopback, load generated from separate processes.

    python -m benchmarks.edge.bets [--mode ws|http|both] [--duration 10] [--procs 1] [--conns 64]
    python -m benchmarks.edge.bets --sync-ratio [--pin]

Prints the CONTRACT benchmark JSON line last: {"bench": "bets", ...}. Each run also reports the
CPU seconds each process used in the measured window (`cpu_s`, from /proc: the edge, its
children — the sync publisher —, the load generators, nats-server) and how many of the box's
cores were busy (`box_busy_cores`), so that "the box was full" is a measurement, not a guess.
With the sync on, the edge's /healthz is read twice a second for the sync lag (entries durable
but not yet acknowledged by the stream): `lag_p50`/`lag_max`, and `drain_s` after the load ends.
`--sync-ratio --pairs N` alternates N off/on pairs and compares medians (the box's disk and
neighbours move single runs by ±25 %). `--pin` pins the edge to CPU 0 and everything else (the load generators, nats-server, the sync
publisher process) to CPU 1, the same in both runs: the edge's core is then the edge's alone, as on
an appliance whose cloud (nats-server) and players (the load) are elsewhere.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from benchmarks.edge import proccpu
from benchmarks.edge.loadgen import run_process
from contract import sync as S
from contract import tokens
from edge_agent.casino import Casino
from edge_agent.config import EdgeConfig

TABLES = ["roulette-1", "roulette-2"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp: Path, port: int, pub: str) -> dict:
    huge = {"min_bet": 100, "max_bet_per_spot": 10**12, "max_per_round": 10**12}
    return {"edge_id": "bench-1", "jurisdiction": "MT", "db_path": str(tmp / "journal.db"),
            "residency_key_hex": "00" * 32, "token_public_key_pem": pub,
            "http": {"host": "127.0.0.1", "port": port},
            "tables": [{"table_id": t, "game": "roulette", "betting_window_s": 3600, "reveal_s": 0.1, "limits": huge}
                       for t in TABLES]}


async def _prefund(cfg: dict, players: list[str]) -> None:
    c = Casino(EdgeConfig(**cfg))
    await c.start(run_tables=False)
    for i, p in enumerate(players):
        psn = c.ensure_player(p)
        await c.apply_command(S.DepositCredit(id=f"f{i}", ts=0, deposit_id=f"f{i}", player=psn,
                                              amount=10**11, currency="EUR"))
    await c.stop()
    c.close()


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] * 1000 if xs else float("nan")


def _box_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole box so far (/proc/stat, every core)."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]  # idle + iowait
    return (sum(f[:8]) - idle) / proccpu._TICK, sum(f[:8]) / proccpu._TICK


def _sync_lag(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            body = json.loads(r.read())
    except OSError as exc:  # a 503 (degraded) still carries the detail
        body = json.loads(exc.read()) if hasattr(exc, "read") else {}
    return body.get("checks", {}).get("sync", {}).get("detail", {}).get("lag")


def _pin(pid: int, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(pid, {cpu})


def run(mode: str, duration: float, procs: int, conns: int, window: int, per_frame: int,
        sync: bool = False, pin: bool = False, nats_store: str | None = None) -> dict:
    edge_cpu, load_cpu = (0, 1) if pin else (None, None)
    key = tokens.new_signing_key()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        port = _free_port()
        cfg = _config(tmp, port, tokens.public_pem(key))
        nats = None
        if sync:
            # The journal flows to a real JetStream while bets are taken: the edge as it runs.
            from tests.support.nats import NatsServer

            nats = NatsServer(Path(tempfile.mkdtemp(dir=nats_store)) if nats_store else tmp / "nats").start()
            cfg["nats"] = {"url": nats.url, "ensure_streams": True}
        players = [f"bench-{i}" for i in range(procs * conns)]
        asyncio.run(_prefund(cfg, players))
        (tmp / "edge.yaml").write_text(yaml.safe_dump(cfg))
        edge = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "serve", "--config", str(tmp / "edge.yaml")],
                                stdout=subprocess.DEVNULL, stderr=open(tmp / "edge.log", "wb"))  # noqa: SIM115 - the child writes to it
        _pin(edge.pid, edge_cpu)  # before it starts its threads: they inherit the mask
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            time.sleep(0.5)
            # --pin: the publisher (spawned before the edge listens) and nats-server share the
            # load generators' CPU; the edge keeps CPU 0 to itself in both runs
            for child in proccpu.children(edge.pid):
                _pin(child, load_cpu)
            if nats is not None and nats.proc is not None:
                _pin(nats.proc.pid, load_cpu)
            toks = [tokens.issue(key, p, "player", "MT") for p in players]
            q: mp.Queue = mp.Queue()
            start_at = time.time() + 1.0
            warmup = 2.0
            ps = [mp.Process(target=run_process, args=(mode, "127.0.0.1", port, toks[i * conns:(i + 1) * conns],
                                                       TABLES, window, per_frame, start_at, warmup, duration, q))
                  for i in range(procs)]
            for p in ps:
                p.start()
                _pin(p.pid, load_cpu)
            window_s = (start_at + warmup - time.time(), duration)
            cpu: dict = {}
            lags: list[int] = []

            def watch() -> None:
                time.sleep(max(0.0, window_s[0]))
                groups = {"edge": [edge.pid], "edge_children": proccpu.children(edge.pid),
                          "loadgen": [p.pid for p in ps]}
                if nats is not None and nats.proc is not None:
                    groups["nats_server"] = [nats.proc.pid]
                b0, before = _box_busy(), proccpu.snapshot(groups)
                end = time.time() + window_s[1]
                while time.time() < end:
                    if sync:
                        lag = _sync_lag(port)
                        if lag is not None:
                            lags.append(lag)
                    time.sleep(min(0.5, max(0.0, end - time.time())))
                b1, after = _box_busy(), proccpu.snapshot(groups)
                cpu.update(proccpu.used(before, after))
                cpu["box_busy_cores"] = round((b1[0] - b0[0]) / window_s[1], 2)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            lat: list[float] = []
            ok = refused = 0
            for _ in ps:
                got_lat, counts = q.get(timeout=duration + 120)
                lat += got_lat
                ok += counts["ok"]
                refused += counts["refused"]
            for p in ps:
                p.join()
            watcher.join(30)
            drain_s = None
            if sync:  # how long the backlog left at the end of the load takes to reach the stream
                t0 = time.monotonic()
                while time.monotonic() - t0 < 30:
                    if _sync_lag(port) == 0:
                        drain_s = round(time.monotonic() - t0, 2)
                        break
                    time.sleep(0.02)
        finally:
            edge.send_signal(signal.SIGTERM)
            edge.wait(60)
            if nats is not None:
                nats.stop()
    return {"mode": mode, "sync": sync, "bets_per_s": round(ok / duration), "refused": refused,
            "p50_ms": round(_pct(lat, 0.50), 2), "p99_ms": round(_pct(lat, 0.99), 2),
            "acks": len(lat), "conns": procs * conns, "window": window if mode == "ws" else 1,
            "bets_per_frame": per_frame if mode == "ws" else 1, "pinned": pin,
            "cpu_s": {k: v for k, v in cpu.items() if k != "box_busy_cores"},
            "box_busy_cores": cpu.get("box_busy_cores"),
            **({"lag_p50": sorted(lags)[len(lags) // 2] if lags else None, "lag_max": max(lags, default=None),
                "drain_s": drain_s} if sync else {})}


def sync_ratio(a: argparse.Namespace) -> dict:
    """Sync off, then on, `--pairs` times (order alternated: off-on, on-off, ...: a drifting box
    biases neither side). The ratio is that of the medians; each pair's ratio is listed too."""
    pairs: list[tuple[dict, dict]] = []
    for i in range(a.pairs):
        order = (False, True) if i % 2 == 0 else (True, False)
        got = {}
        for sync in order:
            got[sync] = run("ws", a.duration, a.procs, a.conns, a.window, a.per_frame, sync, a.pin,
                            a.nats_store if sync else None)
            print(json.dumps(got[sync]), flush=True)
        pairs.append((got[False], got[True]))

    def med(xs: list) -> Any:
        xs = sorted(x for x in xs if x is not None)
        return xs[len(xs) // 2] if xs else None

    off_bps, on_bps = med([o["bets_per_s"] for o, _ in pairs]), med([n["bets_per_s"] for _, n in pairs])
    off, on = pairs[-1]
    return {"bench": "bets_sync_ratio", "machine": f"{os.cpu_count()} vCPU {platform.machine()}",
            "date": time.strftime("%Y-%m-%d"), "load": os.getloadavg()[0], "pairs": a.pairs,
            "ws_bets_per_s_sync_off": off_bps, "ws_bets_per_s_sync_on": on_bps,
            "ratio": round(on_bps / max(1, off_bps), 3),
            "pair_ratios": [round(n["bets_per_s"] / max(1, o["bets_per_s"]), 3) for o, n in pairs],
            "p99_ms_sync_off": med([o["p99_ms"] for o, _ in pairs]), "p99_ms_sync_on": med([n["p99_ms"] for _, n in pairs]),
            "lag_p50_sync_on": med([n["lag_p50"] for _, n in pairs]),
            "lag_max_sync_on": max((n["lag_max"] for _, n in pairs if n["lag_max"] is not None), default=None),
            "drain_s_sync_on": max((n["drain_s"] for _, n in pairs if n["drain_s"] is not None), default=None),
            "pinned": a.pin, "nats_store": a.nats_store or "beside the journal",
            "cpu_s_sync_off": off["cpu_s"], "cpu_s_sync_on": on["cpu_s"],
            "box_busy_cores_sync_off": off["box_busy_cores"], "box_busy_cores_sync_on": on["box_busy_cores"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["ws", "http", "both"], default="both")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--window", type=int, default=3, help="bets in flight per WebSocket")
    ap.add_argument("--per-frame", type=int, default=1, help="bets per WebSocket frame (chips placed at once)")
    ap.add_argument("--sync", action="store_true", help="publish the journal to a real nats-server meanwhile")
    ap.add_argument("--sync-ratio", action="store_true",
                    help="WebSocket bets with the sync off, then on, in one run: prints their ratio")
    ap.add_argument("--pairs", type=int, default=1, help="--sync-ratio: off/on pairs, medians compared")
    ap.add_argument("--pin", action="store_true", help="edge on CPU 0, everything else on CPU 1 (see above)")
    ap.add_argument("--nats-store", help="parent directory of nats-server's JetStream store (default: beside the "
                                         "journal, on the same disk)")
    a = ap.parse_args()
    if a.sync_ratio:
        print(json.dumps(sync_ratio(a)))
        return
    out: dict = {"bench": "bets", "sync": a.sync, "machine": f"{os.cpu_count()} vCPU {platform.machine()}",
                 "date": time.strftime("%Y-%m-%d")}
    if a.mode in ("ws", "both"):
        ws = run("ws", a.duration, a.procs, a.conns, a.window, a.per_frame, a.sync)
        print(json.dumps(ws), flush=True)
        out.update(ws_bets_per_s=ws["bets_per_s"], ws_p50_ms=ws["p50_ms"], ws_p99_ms=ws["p99_ms"],
                   ws_bets_per_frame=ws["bets_per_frame"])
    if a.mode in ("http", "both"):
        http = run("http", a.duration, a.procs, a.conns, a.window, 1, a.sync)
        print(json.dumps(http), flush=True)
        out.update(http_bets_per_s=http["bets_per_s"], http_p50_ms=http["p50_ms"], http_p99_ms=http["p99_ms"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
