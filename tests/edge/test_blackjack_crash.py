"""kill -9 in the middle of a blackjack decision step: after restart every acknowledged decision
is in the journal, the round is voided cleanly (every stake refunded, extra stakes included) and
the whole journal verifies."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import websockets
import yaml

from contract import blackjack as BJ
from contract.verify import verify_entries
from edge_agent.casino import Casino
from edge_agent.journal.store import JournalStore
from tests.edge.conftest import PUBLIC_PEM, edge_config, free_port, fund, player_token
from tests.edge.test_crash import _wait_healthy

PLAYERS = [f"bj-crash-{i}" for i in range(8)]
TABLE = "blackjack-1"


def _table() -> dict[str, Any]:
    return {"table_id": TABLE, "game": "blackjack", "betting_window_s": 1.0, "reveal_s": 0.05,
            "options": {"decision_window_s": 20}}


async def _prefund(tmp: Path) -> None:
    c = Casino(edge_config(tmp, tables=[_table()]))
    await c.start(run_tables=False)
    for p in PLAYERS:
        await fund(c, c.ensure_player(p), 1_000_000)
    await c.stop()
    c.close()


def _start(tmp: Path, port: int) -> subprocess.Popen:
    cfg = {"edge_id": "mt-1", "jurisdiction": "MT", "db_path": str(tmp / "journal.db"),
           "residency_key_hex": "00" * 32, "token_public_key_pem": PUBLIC_PEM,
           "http": {"host": "127.0.0.1", "port": port}, "tables": [_table()]}
    (tmp / "edge.yaml").write_text(yaml.safe_dump(cfg))
    with open(tmp / "edge.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "serve", "--config", str(tmp / "edge.yaml")],
                                stdout=log, stderr=subprocess.STDOUT)


async def _play_until_acked(port: int, acked: list[dict[str, Any]], mid_step: asyncio.Event) -> None:
    """Every player bets; in step 1 half of them double (the others wait, so the window stays open)."""
    async def player(i: int, name: str) -> None:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/v1/ws?token={player_token(name)}") as ws:
                n = None
                async for raw in ws:
                    m = json.loads(raw)
                    if m["type"] == "round.opened" and n is None:
                        n = m["n"]
                        await ws.send(json.dumps({"type": "bet", "req": "b", "table_id": TABLE, "spot": "hand",
                                                  "amount": 100}))
                    elif m["type"] == "blackjack.dealt" and m["n"] == n:
                        if not m.get("next_step"):
                            n = None  # a blackjack: every hand finished at once; play the next round
                        elif i % 2 == 0:
                            await ws.send(json.dumps({"type": "act", "req": "d", "table_id": TABLE, "step": 1,
                                                      "action": "double"}))
                    elif m["type"] == "act.accepted":
                        acked.append(m)
                        if len(acked) == len(PLAYERS) // 2:
                            mid_step.set()
        except (websockets.ConnectionClosed, OSError):
            pass  # the edge was killed

    await asyncio.gather(*(player(i, p) for i, p in enumerate(PLAYERS)))


async def test_kill_9_mid_decision_step_keeps_decisions_and_voids(tmp_path: Path) -> None:
    await _prefund(tmp_path)
    port = free_port()
    proc = _start(tmp_path, port)
    acked: list[dict[str, Any]] = []
    try:
        await _wait_healthy(port)
        mid_step = asyncio.Event()
        load = asyncio.create_task(_play_until_acked(port, acked, mid_step))
        await asyncio.wait_for(mid_step.wait(), 60)
        os.kill(proc.pid, signal.SIGKILL)  # the step's window is still open: no card yet
        proc.wait()
        await asyncio.wait_for(load, 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert acked, "no decision was acknowledged before the kill"

    store = JournalStore(tmp_path / "journal.db")
    before = list(store.iter_all())
    store.close()
    journaled = {(e["data"]["bet_id"], e["data"]["step"], e["data"]["action"], e["data"]["amount"])
                 for e in before if e["kind"] == BJ.DECISION}
    for a in acked:
        assert (a["bet_id"], a["step"], a["action"], a["amount"]) in journaled
    assert not any(e["kind"] == BJ.CARD for e in before)  # killed before the step's card

    port = free_port()
    proc = _start(tmp_path, port)
    try:
        await _wait_healthy(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    store = JournalStore(tmp_path / "journal.db")
    entries = list(store.iter_all())
    store.close()
    bet = next(e for e in entries if e["kind"] == "bet.placed" and e["data"]["bet_id"] == acked[0]["bet_id"])
    ended = [e for e in entries if e["kind"] in ("round.voided", "round.settled")
             and e["data"]["n"] == bet["data"]["n"] and e["data"]["chain_id"] == bet["data"]["chain_id"]]
    assert len(ended) == 1 and ended[0]["kind"] == "round.voided"
    assert ended[0]["data"]["reason"] == "edge_restart"
    refunds = {x["bet_id"]: x["amount"] for x in ended[0]["data"]["refunds"]}
    for a in acked:
        assert refunds[a["bet_id"]] == 100 + a["amount"]  # the main stake and the double
    report = verify_entries(entries)
    assert report.ok, report.problems[:3]
    assert report.rounds_voided >= 1
