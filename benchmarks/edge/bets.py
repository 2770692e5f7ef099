"""Benchmark: durable bets per second and ack latency over WebSocket and HTTP, against a real
edge process on loopback, load generated from separate processes.

    python -m benchmarks.edge.bets [--mode ws|http|both] [--duration 10] [--procs 1] [--conns 64]

Prints the CONTRACT benchmark JSON line last: {"bench": "bets", ...}.
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
import time
from pathlib import Path

import yaml

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


def run(mode: str, duration: float, procs: int, conns: int, window: int, per_frame: int,
        sync: bool = False) -> dict:
    key = tokens.new_signing_key()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        port = _free_port()
        cfg = _config(tmp, port, tokens.public_pem(key))
        nats = None
        if sync:
            # The journal flows to a real JetStream while bets are taken: the edge as it runs.
            from tests.support.nats import NatsServer

            nats = NatsServer(tmp / "nats").start()
            cfg["nats"] = {"url": nats.url, "ensure_streams": True}
        players = [f"bench-{i}" for i in range(procs * conns)]
        asyncio.run(_prefund(cfg, players))
        (tmp / "edge.yaml").write_text(yaml.safe_dump(cfg))
        edge = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "serve", "--config", str(tmp / "edge.yaml")],
                                stdout=subprocess.DEVNULL, stderr=open(tmp / "edge.log", "wb"))  # noqa: SIM115 - the child writes to it
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            time.sleep(0.5)
            toks = [tokens.issue(key, p, "player", "MT") for p in players]
            q: mp.Queue = mp.Queue()
            start_at = time.time() + 1.0
            warmup = 2.0
            ps = [mp.Process(target=run_process, args=(mode, "127.0.0.1", port, toks[i * conns:(i + 1) * conns],
                                                       TABLES, window, per_frame, start_at, warmup, duration, q))
                  for i in range(procs)]
            for p in ps:
                p.start()
            lat: list[float] = []
            ok = refused = 0
            for _ in ps:
                got_lat, counts = q.get(timeout=duration + 120)
                lat += got_lat
                ok += counts["ok"]
                refused += counts["refused"]
            for p in ps:
                p.join()
        finally:
            edge.send_signal(signal.SIGTERM)
            edge.wait(60)
            if nats is not None:
                nats.stop()
    return {"mode": mode, "sync": sync, "bets_per_s": round(ok / duration), "refused": refused,
            "p50_ms": round(_pct(lat, 0.50), 2), "p99_ms": round(_pct(lat, 0.99), 2),
            "acks": len(lat), "conns": procs * conns, "window": window if mode == "ws" else 1,
            "bets_per_frame": per_frame if mode == "ws" else 1}


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
    a = ap.parse_args()
    if a.sync_ratio:
        off = run("ws", a.duration, a.procs, a.conns, a.window, a.per_frame, False)
        print(json.dumps(off), flush=True)
        on = run("ws", a.duration, a.procs, a.conns, a.window, a.per_frame, True)
        print(json.dumps(on), flush=True)
        print(json.dumps({"bench": "bets_sync_ratio", "machine": f"{os.cpu_count()} vCPU {platform.machine()}",
                          "date": time.strftime("%Y-%m-%d"), "load": os.getloadavg()[0],
                          "ws_bets_per_s_sync_off": off["bets_per_s"], "ws_bets_per_s_sync_on": on["bets_per_s"],
                          "ratio": round(on["bets_per_s"] / max(1, off["bets_per_s"]), 3),
                          "p99_ms_sync_off": off["p99_ms"], "p99_ms_sync_on": on["p99_ms"]}))
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
