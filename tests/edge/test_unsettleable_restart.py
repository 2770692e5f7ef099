"""Issue 15, the reported freeze, end to end as a process: a journal holding a closed round that
cannot settle (a `"red\\n"` bet accepted by an older edge) no longer stops `edge-agent serve` from
starting; the round is voided with its reason, the table serves, SIGTERM stops the edge cleanly
(exit 0) and it starts again."""
from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest

from contract import fairness
from edge_agent.casino import Casino
from edge_agent.journal.store import JournalStore
from tests.edge.conftest import edge_config, free_port, fund, player_token
from tests.edge.test_crash import _start, _wait_healthy


async def _legacy_journal(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """What the old `$` pattern let in: a debited "red\\n" bet in a round that then closed."""
    c = Casino(edge_config(tmp, tables=[{"table_id": "roulette-1", "game": "roulette", "betting_window_s": 30},
                                        {"table_id": "baccarat-1", "game": "baccarat", "betting_window_s": 30}]))
    await c.start(run_tables=False)
    psn = c.ensure_player("alice")
    await fund(c, psn, 10_000)
    c.open_round("roulette-1")
    with monkeypatch.context() as m:
        m.setattr(fairness, "valid_spot", lambda game, spot: True)
        await c.bet(psn, "roulette-1", "red\n", 1_000)
    c.close_round("roulette-1")
    await c.store.durable(c.store.seq)
    c.close()  # the edge went down with the round closed and unsettled
    return psn


async def test_an_unsettleable_round_is_voided_and_the_edge_serves_stops_and_restarts(tmp_path, monkeypatch):
    await _legacy_journal(tmp_path, monkeypatch)
    port = free_port()
    for attempt in range(2):  # start, SIGTERM, start again
        proc = _start(tmp_path, port)
        try:
            await _wait_healthy(port)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as cl:
                for _ in range(200):  # the table loop settles (here: voids) the closed round once it runs
                    wallet = await cl.get("/v1/wallet", headers={"Authorization": f"Bearer {player_token('alice')}"})
                    if wallet.status_code == 200 and wallet.json()["balance"] == 10_000:
                        break
                    await asyncio.sleep(0.05)
                assert wallet.status_code == 200 and wallet.json()["balance"] == 10_000  # refunded
                if attempt == 0:
                    r = await cl.post("/v1/bets", json={"table_id": "baccarat-1", "spot": "banker", "amount": 100},
                                      headers={"Authorization": f"Bearer {player_token('alice')}"})
                    assert r.status_code in (201, 409), r.text  # serving (409 only between rounds)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 30)
        assert code == 0, (tmp_path / "edge.log").read_text()[-3000:]
    store = JournalStore(tmp_path / "journal.db")
    voids = [e for e in store.read(1, store.seq) if e["kind"] == "round.voided"
             and e["data"]["reason"].startswith("settlement_failed")]
    store.close()
    assert len(voids) == 1 and voids[0]["data"]["refunds"][0]["amount"] == 1_000
