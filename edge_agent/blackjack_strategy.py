"""Simulated blackjack players: a basic-strategy table with some randomness, and the loop that
plays a round's steps with them through the real engine (`edge-agent simulate --game blackjack`).

The table is the usual one for dealer-stands-on-soft-17 with no hole card (the dealer may still
turn a blackjack after the players, so doubling and splitting against a ten or an ace are
avoided). `noise` is the chance of a random allowed action instead, so that hit, stand, double
and split all occur in simulations and benchmarks.
"""
from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

from contract import blackjack as BJ
from edge_agent.domain.errors import DomainError

H, S, D, P = BJ.HIT, BJ.STAND, BJ.DOUBLE, BJ.SPLIT


def _up(dealer_up: str) -> int:
    v = BJ.card_value(dealer_up)
    return 11 if v == 1 else v


def _pair(v: int, up: int) -> bool:
    if v in (1, 8):
        return up <= 9
    if v in (2, 3, 7):
        return up <= 7
    if v == 6:
        return up <= 6
    if v == 9:
        return up not in (7, 10, 11)
    if v == 4:
        return up in (5, 6)
    return False  # 5s are a hard 10; tens stand


def _soft(t: int, up: int) -> str:
    if t >= 19:
        return S
    if t == 18:
        return D if 3 <= up <= 6 else S if up <= 8 else H
    if t == 17:
        return D if 3 <= up <= 6 else H
    if t in (15, 16):
        return D if 4 <= up <= 6 else H
    return D if 5 <= up <= 6 else H  # soft 13, 14


def _hard(t: int, up: int) -> str:
    if t >= 17:
        return S
    if t >= 13:
        return S if up <= 6 else H
    if t == 12:
        return S if 4 <= up <= 6 else H
    if t == 11:
        return D if up <= 10 else H
    if t == 10:
        return D if up <= 9 else H
    if t == 9:
        return D if 3 <= up <= 6 else H
    return H


def basic(cards: Sequence[str], dealer_up: str, allowed: Sequence[str]) -> str:
    """The basic-strategy action for a hand, limited to what the rules allow now."""
    up = _up(dealer_up)
    if BJ.SPLIT in allowed and _pair(BJ.card_value(cards[0]), up):
        return P
    t, soft = BJ.total(cards)
    want = _soft(t, up) if soft else _hard(t, up)
    if want == D and D not in allowed:
        want = S if soft and t >= 18 else H
    return want if want in allowed else S


def decide(rng: random.Random, cards: Sequence[str], dealer_up: str, allowed: Sequence[str],
           noise: float = 0.15) -> str:
    if not allowed:
        raise ValueError("nothing to decide")
    if rng.random() < noise:
        return rng.choice(list(allowed))
    return basic(cards, dealer_up, allowed)


async def play_out(casino: Any, table_id: str, rng: random.Random, noise: float = 0.15) -> dict[str, int]:
    """Settle the table's round with every simulated player deciding in every step (simulate).

    Decisions go through the real engine (`casino.act`), so they are journaled, take their extra
    stakes from the wallet and close each step's window early once every open hand has decided."""
    counts: dict[str, int] = {a: 0 for a in BJ.ACTIONS} | {"refused": 0}
    events = casino.events.subscribe(f"table:{table_id}")
    task = asyncio.ensure_future(casino.settle_round(table_id))
    try:
        while not task.done():
            get = asyncio.ensure_future(events.get())
            await asyncio.wait({get, task}, return_when=asyncio.FIRST_COMPLETED)
            if not get.done():
                get.cancel()
                break
            ev = get.result()
            step = ev.get("next_step") if ev and ev.get("type") in ("blackjack.dealt", "blackjack.card") else None
            phase = casino.rounds.phase(table_id) if step else None
            if phase is None:
                continue
            for b in list(casino.state.tables[table_id].round.bets):
                v = phase.view(b.player)
                if not v or not v["allowed"]:
                    continue
                hand = next(h for h in v["hands"] if not h["done"])
                action = decide(rng, hand["cards"], v["dealer_up"], v["allowed"], noise)
                for choice in (action, BJ.HIT if action == BJ.DOUBLE else BJ.STAND):
                    try:  # without the funds for a double or split, play on
                        await casino.act(b.player, table_id, {"action": choice, "step": step})
                        counts[choice] += 1
                        break
                    except DomainError:
                        counts["refused"] += 1
        await task
    finally:
        casino.events.unsubscribe(events)
    return counts
