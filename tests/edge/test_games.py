"""The game interface: a game with a play phase (decisions, extra stakes) plugs into the engine
through `edge_agent.domain.games` alone — betting, scheduling, settlement, voids and replay."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from contract import fairness
from contract import journal as J
from edge_agent.casino import Casino
from edge_agent.domain import errors as E
from edge_agent.domain import games, rounds
from edge_agent.domain.games.base import Game, PlayContext, Settlement
from edge_agent.domain.rounds import Round
from tests.edge.conftest import edge_config, fund

DEAL, RAISE = "highcard.dealt", "highcard.raise"


class _Phase:
    def __init__(self, ctx: PlayContext) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        card = fairness.uniform(fairness.byte_stream(self.ctx.server_seed, self.ctx.client_seed, self.ctx.round.n), 13)
        await self.ctx.record(DEAL, {"shown": card % 2})
        self.ctx.announce({"type": "highcard.dealt"})
        await self.ctx.window(float(self.ctx.settings.get("decision_window_s", 0.3)))

    async def act(self, player: str, action: Mapping[str, Any]) -> dict[str, Any]:
        bet = next((b for b in self.ctx.round.bets if b.player == player), None)
        if bet is None or action.get("action") != "raise" or bet.extra:
            raise E.DomainError(E.INVALID_REQUEST, "no such decision")
        self.ctx.check_extra_stake(player, bet.amount)
        e = await self.ctx.record(RAISE, {"bet_id": bet.bet_id, "amount": bet.amount})
        return {"seq": e["seq"], "stake": bet.stake}


class HighCard(Game):
    """A toy: one bet per player; after the deal a player may raise (double the stake); a card above 6 wins 1:1."""

    name = "highcard"
    rules_version = "highcard/1"
    play_kinds = frozenset({DEAL, RAISE})

    def spots(self) -> list[str]:
        return ["hand"]

    def paytable(self) -> dict[str, str]:
        return {"hand": "1:1 on a card above 6"}

    def admit(self, r: Round, player: str, spot: str, amount: int) -> None:
        if r.staked.get(player):
            raise E.DomainError(E.DUPLICATE_BET, "one bet per player per round", 409)

    def extra_stake(self, kind: str, data: Mapping[str, Any]) -> tuple[str, int] | None:
        return (data["bet_id"], data["amount"]) if kind == RAISE else None

    def play_phase(self, ctx: PlayContext) -> _Phase:
        return _Phase(ctx)

    def settle(self, r: Round, server_seed: bytes, client_seed: str) -> Settlement:
        card = fairness.uniform(fairness.byte_stream(server_seed, client_seed, r.n), 13)
        return Settlement({"card": card}, [{"bet_id": b.bet_id, "payout": 2 * b.stake if card > 6 else 0}
                                           for b in r.bets])


@pytest.fixture
def highcard() -> Iterator[HighCard]:
    g = games.register(HighCard())
    yield g
    games.unregister(g.name)


def _config(tmp: Path) -> Any:
    return edge_config(tmp, tables=[{"table_id": "hc-1", "game": "highcard", "betting_window_s": 30,
                                     "reveal_s": 0, "options": {"decision_window_s": 0.3}}])


async def _until_deal(c: Casino) -> None:
    for _ in range(200):
        r = c.state.tables["hc-1"].round
        if r is not None and r.play:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no deal")


async def test_play_phase_decisions_extra_stakes_and_settlement(tmp_path: Path, highcard: HighCard) -> None:
    c = Casino(_config(tmp_path))
    await c.start(run_tables=False)
    try:
        a, b = c.ensure_player("a"), c.ensure_player("b")
        await fund(c, a, 10_000)
        await fund(c, b, 10_000)
        c.open_round("hc-1")
        c.place_bet(a, "hc-1", "hand", 1_000)
        c.place_bet(b, "hc-1", "hand", 500)
        with pytest.raises(E.DomainError) as err:
            c.place_bet(a, "hc-1", "hand", 100)  # the game's own admission rule
        assert err.value.code == E.DUPLICATE_BET
        with pytest.raises(E.DomainError) as err:
            await c.act(a, "hc-1", {"action": "raise"})  # not in play yet: betting is open
        assert err.value.code == "not_in_play"

        settling = asyncio.create_task(c.settle_round("hc-1"))
        await _until_deal(c)
        got = await c.act(a, "hc-1", {"action": "raise"})
        assert got["stake"] == 2_000
        assert c.state.cash(a) == 8_000 and c.state.in_play(a) == 2_000  # debited mid-round, before settlement
        e = await settling
        assert e is not None
        win = e["data"]["outcome"]["card"] > 6
        assert c.state.cash(a) == (8_000 + 4_000 if win else 8_000)
        assert c.state.cash(b) == (9_500 + 1_000 if win else 9_500)
        assert c.state.in_play(a) == 0 and c.state.ledger.total() == 0

        # The settlement follows from the journaled entries alone (what a regulator re-checks).
        proof = c.round_proof("hc-1", e["data"]["chain_id"], e["data"]["n"])
        replayed = rounds.replay(proof["entries"], highcard.play_kinds, highcard.extra_stake)
        assert replayed is not None and [bt.stake for bt in replayed.bets] == [2_000, 500]
        again = highcard.settle(replayed, bytes.fromhex(e["data"]["server_seed"]), e["data"]["client_seed"])
        assert again.outcome == e["data"]["outcome"] and again.payouts == e["data"]["payouts"]
        assert [x["kind"] for x in proof["entries"]].count(RAISE) == 1
    finally:
        await c.stop()
        c.close()


async def test_void_in_play_refunds_every_stake(tmp_path: Path, highcard: HighCard) -> None:
    c = Casino(_config(tmp_path))
    await c.start(run_tables=False)
    try:
        a = c.ensure_player("a")
        await fund(c, a, 10_000)
        c.open_round("hc-1")
        c.place_bet(a, "hc-1", "hand", 1_000)
        settling = asyncio.create_task(c.settle_round("hc-1"))
        await _until_deal(c)
        await c.act(a, "hc-1", {"action": "raise"})
        v = await c.void_round("hc-1", "operator", "op")
        assert v["data"]["refunds"] == [{"bet_id": v["data"]["refunds"][0]["bet_id"], "amount": 2_000}]
        assert await settling is None  # the play phase ended with the round; nothing settled
        assert c.state.cash(a) == 10_000 and c.state.in_play(a) == 0
        assert not any(x["kind"] == J.ROUND_SETTLED for x in c.store.read())
    finally:
        await c.stop()
        c.close()


async def test_recovery_settles_a_round_cut_short_in_play(tmp_path: Path, highcard: HighCard) -> None:
    c = Casino(_config(tmp_path))
    await c.start(run_tables=False)
    a = c.ensure_player("a")
    await fund(c, a, 10_000)
    c.open_round("hc-1")
    c.place_bet(a, "hc-1", "hand", 1_000)
    settling = asyncio.create_task(c.settle_round("hc-1"))
    await _until_deal(c)
    await c.act(a, "hc-1", {"action": "raise"})
    settling.cancel()  # the process dies in the decision window
    await c.store.durable(c.store.seq)
    c.close()

    c2 = Casino(_config(tmp_path))
    assert c2.state.in_play(a) == 2_000  # the extra stake replays from the journal
    await c2.start(run_tables=False)
    try:
        ended = [x for x in c2.store.read() if x["kind"] in (J.ROUND_SETTLED, J.ROUND_VOIDED)]
        assert [x["kind"] for x in ended] == [J.ROUND_SETTLED]  # betting had closed: settled from the record
        assert c2.state.in_play(a) == 0 and c2.state.ledger.total() == 0
    finally:
        await c2.stop()
        c2.close()
