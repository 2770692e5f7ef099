"""Rounds are never left half-done across a restart; players are told."""
from __future__ import annotations

from contract import journal as J
from edge_agent.casino import Casino
from tests.edge.conftest import edge_config, fund


async def _crash(c: Casino) -> None:
    await c.store.durable(c.store.seq)
    c.store.close()  # no graceful stop: the process is gone


async def test_open_round_is_voided_and_refunded_on_restart(tmp_path):
    c = Casino(edge_config(tmp_path))
    await c.start(run_tables=False)
    psn = c.ensure_player("p")
    await fund(c, psn, 5_000)
    c.open_round("roulette-1")
    await c.bet(psn, "roulette-1", "red", 1_000)
    await _crash(c)

    c2 = Casino(edge_config(tmp_path))
    assert c2.state.in_play(psn) == 1_000  # replayed as it was
    q = c2.events.subscribe(f"player:{psn}")
    await c2.start(run_tables=False)
    last = [e for e in c2.store.read(1) if e["kind"] == J.ROUND_VOIDED][-1]
    assert last["data"]["reason"] == "edge_restart" and last["data"]["refunds"][0]["amount"] == 1_000
    assert c2.state.cash(psn) == 5_000 and c2.state.in_play(psn) == 0
    assert (await q.get())["type"] == "refund"
    # A player who was not connected during recovery is told at the next connection.
    assert c2.notices[psn][0]["reason"] == "edge_restart" and c2.notices[psn][0]["amount"] == 1_000
    await c2.stop()
    c2.close()


async def test_closed_round_is_settled_on_restart(tmp_path):
    c = Casino(edge_config(tmp_path))
    await c.start(run_tables=False)
    psn = c.ensure_player("p")
    await fund(c, psn, 5_000)
    c.open_round("baccarat-1")
    await c.bet(psn, "baccarat-1", "player", 1_000)
    c.close_round("baccarat-1")
    await _crash(c)

    c2 = Casino(edge_config(tmp_path))
    await c2.start(run_tables=False)
    kinds = [e["kind"] for e in c2.store.read(1)]
    assert kinds[-1] == J.ROUND_SETTLED or J.ROUND_SETTLED in kinds[-3:]
    assert c2.state.in_play(psn) == 0 and c2.state.tables["baccarat-1"].round is None
    await c2.stop()
    c2.close()


async def test_closed_round_without_its_chain_secret_is_voided_not_settled(tmp_path):
    """A journal rebuilt from the cloud's copy has the commitment but not the secret."""
    import sqlite3

    c = Casino(edge_config(tmp_path))
    await c.start(run_tables=False)
    psn = c.ensure_player("p")
    await fund(c, psn, 5_000)
    c.open_round("baccarat-1")
    await c.bet(psn, "baccarat-1", "player", 1_000)
    c.close_round("baccarat-1")
    await _crash(c)
    with sqlite3.connect(c.store.path) as db:
        db.execute("DELETE FROM chain_secrets")

    c2 = Casino(edge_config(tmp_path))
    await c2.start(run_tables=False)
    ends = [e for e in c2.store.read(1) if e["kind"] in (J.ROUND_SETTLED, J.ROUND_VOIDED)]
    assert [e["kind"] for e in ends] == [J.ROUND_VOIDED]
    assert ends[0]["data"]["reason"] == "seed_lost" and ends[0]["data"]["refunds"][0]["amount"] == 1_000
    assert c2.state.cash(psn) == 5_000 and c2.state.in_play(psn) == 0
    # the next round runs on a fresh chain, whose commitment is journaled first
    c2.open_round("baccarat-1")
    await c2.store.durable(c2.store.seq)
    chains = [e for e in c2.store.read(1) if e["kind"] == J.FAIRNESS_CHAIN]
    assert len(chains) == 2 and c2.state.tables["baccarat-1"].round.chain_id == chains[-1]["data"]["chain_id"]
    await c2.stop()
    c2.close()


async def test_chain_continues_across_restart_and_verifies(tmp_path):
    from contract.verify import verify_entries

    for _ in range(3):
        c = Casino(edge_config(tmp_path, chain_length=2))
        await c.start(run_tables=False)
        psn = c.ensure_player("p")
        await fund(c, psn, 5_000)
        for _ in range(3):
            c.open_round("roulette-1")
            await c.bet(psn, "roulette-1", "odd", 100, player_seed="lucky")
            await c.settle_round("roulette-1")
        await c.stop()
        c.close()
    c = Casino(edge_config(tmp_path))
    report = verify_entries(list(c.store.iter_all()))
    assert report.ok, report.problems
    assert report.rounds_verified == 9
    chains = [e for e in c.store.iter_all() if e["kind"] == J.FAIRNESS_CHAIN and e["data"]["table_id"] == "roulette-1"]
    assert len(chains) >= 5  # a chain of 2 rounds is replaced when used up
    c.close()


async def test_feed_down_voids_round_and_stops_bets(tmp_path):
    cfg = edge_config(tmp_path, tables=[{"table_id": "roulette-1", "game": "roulette", "betting_window_s": 30,
                                         "requires_feed": True}])
    c = Casino(cfg)
    await c.start(run_tables=False)
    psn = c.ensure_player("p")
    await fund(c, psn, 5_000)
    assert not c.state.tables["roulette-1"].accepting  # no feed yet
    await c.feed_up("roulette-1")
    c.open_round("roulette-1")
    await c.bet(psn, "roulette-1", "red", 700)
    await c.feed_down("roulette-1", "studio_feed_lost")
    assert c.state.cash(psn) == 5_000
    voided = [e for e in c.store.read(1) if e["kind"] == J.ROUND_VOIDED][-1]
    assert voided["data"]["reason"] == "studio_feed_lost"
    import pytest

    from edge_agent.domain.errors import DomainError

    with pytest.raises(DomainError) as e:
        c.place_bet(psn, "roulette-1", "red", 100)
    assert e.value.code == "table_not_live"
    await c.stop()
    c.close()
