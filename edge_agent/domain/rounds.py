"""Rounds, their bets and seed chains: the model every game plays on.

A round is `open` (taking bets) then `closed` (the client seed is fixed; a game with a play
phase plays it now) and ends settled or voided. `play` holds the round's game-specific journal
entries in journal order (for blackjack: the deal, decisions, step cards): settlement and a
verifier recompute everything from the bets and these entries, never from live memory.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contract import journal as J

OPEN, CLOSED = "open", "closed"


@dataclass
class Bet:
    bet_id: str
    player: str
    table_id: str
    key: tuple[str, str, int]
    spot: str
    amount: int  # the main stake, as in bet.placed
    player_seed: str
    extra: int = 0  # stakes added during the play phase (double, split): refunded by a void

    @property
    def stake(self) -> int:
        """Everything this bet has at risk."""
        return self.amount + self.extra


@dataclass
class Round:
    table_id: str
    chain_id: str
    n: int
    game: str
    rules_version: str
    opened_ts: int
    closes_ts: int
    status: str = OPEN
    opened_seq: int = 0
    bets: list[Bet] = field(default_factory=list)
    staked: dict[str, int] = field(default_factory=dict)  # per player, extra stakes included
    spot_staked: dict[tuple[str, str], int] = field(default_factory=dict)  # per (player, spot)
    play: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (kind, data) of the game's entries

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.table_id, self.chain_id, self.n)

    def bet(self, bet_id: str) -> Bet | None:
        return next((b for b in self.bets if b.bet_id == bet_id), None)

    def add(self, bet: Bet) -> None:
        self.bets.append(bet)
        self.staked[bet.player] = self.staked.get(bet.player, 0) + bet.amount
        self.spot_staked[(bet.player, bet.spot)] = self.spot_staked.get((bet.player, bet.spot), 0) + bet.amount

    def add_stake(self, bet: Bet, amount: int) -> None:
        bet.extra += amount
        self.staked[bet.player] = self.staked.get(bet.player, 0) + amount

    def client_seed_bets(self) -> list[tuple[str, str]]:
        return [(b.bet_id, b.player_seed) for b in self.bets]


@dataclass
class Chain:
    chain_id: str
    length: int
    commitment: str
    used: int = 0  # highest n opened


def replay(entries: Iterable[Mapping[str, Any]], play_kinds: frozenset[str],
           extra_stake: Any = None) -> Round | None:
    """Rebuild one round from its journaled entries (round.opened, bet.placed, the game's kinds).

    What a regulator's check and a verifier use to recompute a settlement from the record.
    `extra_stake(kind, data) -> (bet_id, amount) | None` names stakes added in play."""
    r: Round | None = None
    for e in entries:
        kind, d = e["kind"], e["data"]
        if kind == J.ROUND_OPENED:
            r = Round(d["table_id"], d["chain_id"], d["n"], d["game"], d.get("rules_version", ""), e.get("ts", 0),
                      d.get("closes_ts", e.get("ts", 0)), opened_seq=e.get("seq", 0))
        elif r is None:
            continue
        elif kind == J.BET_PLACED:
            r.add(Bet(d["bet_id"], d["player"], d["table_id"], r.key, d["spot"], d["amount"], d["player_seed"]))
        elif kind == J.ROUND_CLOSED:
            r.status = CLOSED
        elif kind in play_kinds:
            r.play.append((kind, d))
            extra = extra_stake(kind, d) if extra_stake else None
            if extra is not None and (b := r.bet(extra[0])) is not None:
                r.add_stake(b, extra[1])
    return r
