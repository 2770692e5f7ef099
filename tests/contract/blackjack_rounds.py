"""Honest blackjack rounds as journal entries, built straight from the CONTRACT rules (for tests)."""
from __future__ import annotations

import random
from typing import Any

from contract import blackjack as BJ
from contract import fairness
from contract import journal as J

TABLE, CHAIN = "bj-1", "c0ffee"


def random_action(rng: random.Random, play: BJ.Play, bet_id: str) -> str | None:
    """Mostly an allowed action, sometimes none (the hand stands) or one the rules may refuse."""
    allowed = play.allowed(bet_id)
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.2 or not allowed:
        return rng.choice(BJ.ACTIONS)
    return rng.choice(allowed)


def honest_round(seed: int, n_bets: int, *, n: int = 1, length: int = 3) -> list[dict[str, Any]]:
    """fairness.chain ... round.settled for one blackjack round with random decisions."""
    rng = random.Random(seed)
    chain = fairness.derive_chain(rng.randbytes(32), length)
    datas: list[tuple[str, dict[str, Any]]] = [
        (J.FAIRNESS_CHAIN, {"table_id": TABLE, "chain_id": CHAIN, "length": length, "commitment": chain[0].hex()}),
        (J.ROUND_OPENED, {"table_id": TABLE, "chain_id": CHAIN, "n": n, "game": BJ.BLACKJACK}),
    ]
    key = {"table_id": TABLE, "chain_id": CHAIN, "n": n}
    bets = []
    for i in range(n_bets):
        b = {"bet_id": f"e-{i}", **key, "player": f"p{i}", "spot": BJ.SPOT,
             "amount": rng.choice((100, 250, 1000, 1001)), "currency": "EUR", "player_seed": f"s{rng.random()}"}
        bets.append(b)
        datas.append((J.BET_PLACED, b))
    cs = fairness.client_seed((b["bet_id"], b["player_seed"]) for b in bets)
    shoe = BJ.shoe(chain[n], cs, n)
    play = BJ.Play.deal(shoe, [(b["bet_id"], b["amount"]) for b in bets])
    datas.append((BJ.DEALT, {**key, "hand": play.shared_hand, "dealer_up": play.dealer_up}))
    while not play.players_done:
        for b in bets:
            action = random_action(rng, play, b["bet_id"])
            if action is None:
                continue
            try:
                added = play.decide(b["bet_id"], action)
            except BJ.Refused:
                continue
            datas.append((BJ.DECISION, {**key, "bet_id": b["bet_id"], "step": play.step, "action": action,
                                        "amount": added}))
        res = play.run_step()
        if res.card is not None:
            datas.append((BJ.CARD, {**key, "step": res.step, "card": res.card}))
    payouts = play.payouts()
    datas.append((J.ROUND_SETTLED, {**key, "game": BJ.BLACKJACK, "server_seed": chain[n].hex(), "client_seed": cs,
                                    "outcome": play.outcome(),
                                    "payouts": [{"bet_id": b["bet_id"], "payout": payouts[b["bet_id"]]}
                                                for b in bets]}))
    return chain_entries(datas)


def chain_entries(datas: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    prev = J.GENESIS_PREV
    for i, (kind, data) in enumerate(datas, start=1):
        e = J.make_entry(i, 1_764_000_000_000 + i, kind, data, prev)
        out.append(e)
        prev = e["hash"]
    return out


def rehash(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return chain_entries([(e["kind"], e["data"]) for e in entries])
