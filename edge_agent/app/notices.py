"""What players and table watchers are told when a round ends (after the entry is durable, or
kept as a notice for the next connection when nobody could be listening)."""
from __future__ import annotations

from typing import Any

from edge_agent import metrics as M
from edge_agent.app.engine import Engine
from edge_agent.domain import state as ST


class Notices:
    """A round's end goes out as one delivery per socket: the table events held for it
    (Engine.hold_table, e.g. blackjack.dealer), round.settled or round.voided, then the player's
    own settlement or refund (EventHub.publish_with_own): at a table of 5,000 players, one write
    each instead of three."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def settled(self, e: dict[str, Any], bets: list[ST.Bet]) -> None:
        """`e` is a durable round.settled: the seed is public now."""
        d = e["data"]
        eng = self._engine
        won: dict[str, int] = {}
        staked: dict[str, int] = {}
        for b, p in zip(bets, d["payouts"]):
            won[b.player] = won.get(b.player, 0) + p["payout"]
            staked[b.player] = staked.get(b.player, 0) + b.stake
        own = {psn: {
            "type": "settlement", "table_id": d["table_id"], "n": d["n"], "staked": staked[psn],
            "payout": payout, "balance": eng.state.cash(psn),
            "net_position": eng.state.player(psn).session_net,
        } for psn, payout in won.items()}
        eng.publish_table_with_players(d["table_id"], [{
            "type": "round.settled", "table_id": d["table_id"], "chain_id": d["chain_id"], "n": d["n"],
            "game": d["game"], "outcome": d["outcome"], "server_seed": d["server_seed"],
            "client_seed": d["client_seed"], "seq": e["seq"],
        }], own)
        M.ROUNDS.labels(table=d["table_id"], result="settled").inc()


    def voided(self, e: dict[str, Any], bets: list[ST.Bet]) -> None:
        d = e["data"]
        eng = self._engine
        refunds = {r["bet_id"]: r["amount"] for r in d["refunds"]}
        by_player: dict[str, int] = {}  # one pass: a blackjack table may hold thousands of bets
        for b in bets:
            by_player[b.player] = by_player.get(b.player, 0) + refunds.get(b.bet_id, 0)
        own: dict[str, dict[str, Any]] = {}
        for psn, refunded in by_player.items():
            notice = {"type": "refund", "table_id": d["table_id"], "n": d["n"], "amount": refunded,
                      "reason": d["reason"], "balance": eng.state.cash(psn), "seq": e["seq"]}
            own[psn] = notice
            if not eng.running:
                # Voided while nobody could be listening (start-up recovery): told at next connect.
                eng.notices.setdefault(psn, []).append(notice)
        eng.publish_table_with_players(d["table_id"], [{
            "type": "round.voided", "table_id": d["table_id"], "n": d["n"], "reason": d["reason"]}], own)
        M.ROUNDS.labels(table=d["table_id"], result="voided").inc()
