"""kill -9 under load, several times: every acknowledged bet is in the journal after restart,
and the hash chain (and every round's fairness) still verifies."""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import websockets
import yaml

from contract.verify import verify_entries
from edge_agent.casino import Casino
from edge_agent.journal.store import JournalStore
from tests.edge.conftest import PUBLIC_PEM, edge_config, free_port, fund, player_token

PLAYERS = [f"crash-{i}" for i in range(16)]


async def _prefund(tmp: Path) -> None:
    c = Casino(edge_config(tmp))
    await c.start(run_tables=False)
    for p in PLAYERS:
        await fund(c, c.ensure_player(p), 10_000_000)
    await c.stop()
    c.close()


def _start(tmp: Path, port: int) -> subprocess.Popen:
    cfg = {
        "edge_id": "mt-1", "jurisdiction": "MT", "db_path": str(tmp / "journal.db"),
        "residency_key_hex": "00" * 32, "token_public_key_pem": PUBLIC_PEM,
        "http": {"host": "127.0.0.1", "port": port},
        "tables": [{"table_id": "roulette-1", "game": "roulette", "betting_window_s": 0.7, "reveal_s": 0.05},
                   {"table_id": "baccarat-1", "game": "baccarat", "betting_window_s": 0.5, "reveal_s": 0.05}],
    }
    (tmp / "edge.yaml").write_text(yaml.safe_dump(cfg))
    return subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "serve", "--config", str(tmp / "edge.yaml")],
                            stdout=open(tmp / "edge.log", "ab"), stderr=subprocess.STDOUT)


async def _wait_healthy(port: int) -> None:
    async with httpx.AsyncClient() as cl:
        for _ in range(300):
            try:
                if (await cl.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("edge did not become healthy")


async def _load(port: int, acked: set[str], stop: asyncio.Event) -> None:
    async def player(name: str) -> None:
        rng = random.Random(name)
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/v1/ws?token={player_token(name)}") as ws:
                async def sender() -> None:
                    i = 0
                    while not stop.is_set():
                        table, spot = rng.choice([("roulette-1", "red"), ("roulette-1", "straight:7"),
                                                  ("baccarat-1", "banker")])
                        await ws.send(json.dumps({"type": "bet", "req": i, "table_id": table, "spot": spot,
                                                  "amount": 100}))
                        i += 1
                        await asyncio.sleep(0.002)
                task = asyncio.create_task(sender())
                try:
                    async for raw in ws:
                        m = json.loads(raw)
                        if m["type"] == "bet.accepted":
                            acked.add(m["bet_id"])
                finally:
                    task.cancel()
        except (websockets.ConnectionClosed, OSError):
            pass  # the edge was killed

    await asyncio.gather(*(player(p) for p in PLAYERS))


async def test_kill_9_under_load_loses_no_acknowledged_bet(tmp_path: Path):
    await _prefund(tmp_path)
    all_acked: set[str] = set()
    rounds = 3
    for cycle in range(rounds):
        port = free_port()
        proc = _start(tmp_path, port)
        try:
            await _wait_healthy(port)
            acked: set[str] = set()
            stop = asyncio.Event()
            load = asyncio.create_task(_load(port, acked, stop))
            await asyncio.sleep(1.5 + random.random())
            os.kill(proc.pid, signal.SIGKILL)  # mid-load, no warning
            proc.wait()
            stop.set()
            await asyncio.wait_for(load, 10)
            assert acked, f"cycle {cycle}: no bet was acknowledged before the kill"
            all_acked |= acked
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        store = JournalStore(tmp_path / "journal.db")
        placed = {e["data"]["bet_id"] for e in store.iter_all() if e["kind"] == "bet.placed"}
        store.close()
        missing = all_acked - placed
        assert not missing, f"cycle {cycle}: {len(missing)} acknowledged bets lost"

    # Restart once more: recovery resolves the round cut by the last kill; everything verifies.
    port = free_port()
    proc = _start(tmp_path, port)
    try:
        await _wait_healthy(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    store = JournalStore(tmp_path / "journal.db")
    entries = list(store.iter_all())
    store.close()
    report = verify_entries(entries)
    assert report.ok, report.problems[:3]
    assert report.rounds_verified + report.rounds_voided > rounds
    assert any(e["kind"] == "round.voided" and e["data"]["reason"] == "edge_restart" for e in entries)


async def test_sigterm_voids_open_rounds_and_flushes(tmp_path: Path):
    """Kubernetes-style stop: SIGTERM, the edge voids what is still taking bets, flushes, exits 0."""
    await _prefund(tmp_path)
    port = free_port()
    proc = _start(tmp_path, port)
    try:
        await _wait_healthy(port)
        async with websockets.connect(f"ws://127.0.0.1:{port}/v1/ws?token={player_token(PLAYERS[0])}") as ws:
            acked = None
            for i in range(200):
                await ws.send(json.dumps({"type": "bet", "req": i, "table_id": "roulette-1", "spot": "red",
                                          "amount": 100}))
                m = json.loads(await ws.recv())
                while m["type"] not in ("bet.accepted", "bet.refused"):
                    m = json.loads(await ws.recv())
                if m["type"] == "bet.accepted":
                    acked = m
                    break
                await asyncio.sleep(0.05)
            assert acked is not None
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    store = JournalStore(tmp_path / "journal.db")
    entries = list(store.iter_all())
    store.close()
    assert any(e["kind"] == "bet.placed" and e["data"]["bet_id"] == acked["bet_id"] for e in entries)
    ended = [e for e in entries if e["kind"] in ("round.voided", "round.settled")
             and e["data"]["n"] == acked["n"] and e["data"]["chain_id"] == acked["chain_id"]
             and e["data"]["table_id"] == "roulette-1"]
    assert len(ended) == 1
    assert verify_entries(entries).ok
