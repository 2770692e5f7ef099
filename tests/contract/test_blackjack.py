"""Blackjack rules (CONTRACT section 3): totals, the step machine, payouts, voids, the verifier."""
from __future__ import annotations

import copy
import itertools
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import blackjack as BJ
from contract import journal as J
from contract.verify import verify_entries
from edge_agent.domain.ledger import HOUSE, Ledger, cash, in_play
from tests.contract.blackjack_rounds import honest_round, random_action, rehash

RANKS = "A23456789TJQK"
cards = st.builds(lambda r, s: r + s, st.sampled_from(RANKS), st.sampled_from("SHDC"))
# Shoes whose top is rich in aces, pairs and small cards, so splits, soft hands and long steps occur.
LOW = ["AS", "AH", "2C", "3D", "4S", "5H", "6C", "7D", "8S", "8H", "9C", "TD", "KS"]
_FILL = BJ.shoe(b"\x01" * 32, "", 1)
shoes = st.lists(st.sampled_from(LOW) | cards, min_size=60, max_size=60).map(lambda top: top + _FILL[60:])


def brute_total(hand):
    """Every way of counting the aces; the best <= 21, else the lowest."""
    aces = sum(c[0] == "A" for c in hand)
    base = sum(BJ.card_value(c) for c in hand if c[0] != "A")
    options = sorted({base + sum(v) for v in itertools.product((1, 11), repeat=aces)})
    good = [t for t in options if t <= 21]
    t = max(good) if good else min(options)
    return t, aces > 0 and t == base + aces + 10


@given(st.lists(cards, min_size=1, max_size=12))
def test_totals_and_soft_hands(hand):
    assert BJ.total(hand) == brute_total(hand)


def test_values_and_examples():
    assert BJ.total(["AS", "KH"]) == (21, True)
    assert BJ.total(["AS", "AH"]) == (12, True)
    assert BJ.total(["AS", "6H", "TD"]) == (17, False)
    assert BJ.total(["TS", "QH", "2D"]) == (22, False)
    assert [BJ.card_value(c) for c in ("AS", "9H", "TD", "JC", "QS", "KH")] == [1, 9, 10, 10, 10, 10]


def play_randomly(shoe, n_bets, rng, amounts=None):
    """Drive a Play with random decisions, checking the step rules as it goes; return (play, decisions)."""
    amounts = amounts or [rng.choice((100, 150, 1000)) for _ in range(n_bets)]
    play = BJ.Play.deal(shoe, [(f"b{i}", a) for i, a in enumerate(amounts)])
    added: dict[str, int] = {f"b{i}": 0 for i in range(n_bets)}
    while not play.players_done:
        for bet_id in list(play.bets):
            action = random_action(rng, play, bet_id)
            if action is None:
                continue
            before = copy.deepcopy(play)
            try:
                added[bet_id] += play.decide(bet_id, action)
            except BJ.Refused as r:
                assert r.code
                assert play == before, "a refused decision changed the play"
        held = {b: Counter(c for h in p.hands for c in h.cards) for b, p in play.bets.items()}
        top = shoe[play.next]
        res = play.run_step()
        for b, p in play.bets.items():
            new = Counter(c for h in p.hands for c in h.cards) - held[b]
            # a split moves a card between the bet's hands: only the step's card is new
            assert sum(new.values()) <= 1, "a bet took more than one card in a step"
            assert (b in res.takers) == (sum(new.values()) == 1)
            if b in res.takers:
                assert new == Counter([top]), "a hand took a card other than the step's S[next]"
        assert res.card == (top if res.takers else None)
    return play, added


@settings(max_examples=300, deadline=None)
@given(shoes, st.integers(1, 6), st.randoms(use_true_random=False))
def test_step_rules_stakes_and_ledger(shoe, n_bets, rng):
    play, added = play_randomly(shoe, n_bets, rng)
    assert play.next == 3 + play.steps_taken
    for b in play.bets.values():
        assert b.extra_staked == added[b.bet_id]
        assert len(b.hands) <= 2
        assert all(h.done for h in b.hands)
        for h in b.hands:
            assert len(h.cards) >= 2 or b.blackjack
    dealer = play.dealer()
    assert dealer[0] == shoe[1] and dealer[1:] == shoe[play.next:play.next + len(dealer) - 1]
    assert BJ.hand_total(dealer) >= 17 and BJ.hand_total(dealer[:-1]) < 17 or len(dealer) == 2
    # The ledger: every stake leaves the wallet into play, settlement empties play; sums stay zero.
    led = Ledger()
    payouts = play.payouts()
    for b in play.bets.values():
        led.transfer("world", cash(b.bet_id), 10_000)
        led.transfer(cash(b.bet_id), in_play(b.bet_id), b.main_stake)
        led.transfer(cash(b.bet_id), in_play(b.bet_id), added[b.bet_id])
    for b in play.bets.values():
        staked = b.main_stake + added[b.bet_id]
        assert payouts[b.bet_id] >= 0
        led.post([(in_play(b.bet_id), -staked), (cash(b.bet_id), payouts[b.bet_id]),
                  (HOUSE, staked - payouts[b.bet_id])])
        assert led.balance(in_play(b.bet_id)) == 0
    assert led.total() == 0


@settings(max_examples=200, deadline=None)
@given(shoes, st.integers(1, 5), st.randoms(use_true_random=False), st.integers(0, 30), st.booleans())
def test_void_refunds_exactly_what_was_staked(shoe, n_bets, rng, stop_after, mid_step):
    """Voided at any point, even between a step's decisions and its card: each bet's refund is what
    its wallet gave, the main stake plus every extra stake taken when a double or split was accepted."""
    play = BJ.Play.deal(shoe, [(f"b{i}", 100 * (i + 1)) for i in range(n_bets)])
    taken = {b: p.main_stake for b, p in play.bets.items()}
    journal = []
    steps = 0
    while not play.players_done:
        for bet_id in play.bets:
            action = random_action(rng, play, bet_id)
            try:
                amount = play.decide(bet_id, action) if action else None
            except BJ.Refused:
                continue
            if amount is not None:
                taken[bet_id] += amount
                journal.append({"kind": BJ.DECISION, "data": {"bet_id": bet_id, "amount": amount}})
        if steps == stop_after and mid_step:
            break
        play.run_step()
        assert {b: p.staked for b, p in play.bets.items()} == taken
        steps += 1
        if steps == stop_after:
            break
    refunds = BJ.stakes([{"bet_id": b, "amount": p.main_stake} for b, p in play.bets.items()], journal)
    assert refunds == taken


def fixed(top):
    """A shoe starting with `top`, padded with tens."""
    return list(top) + ["TS"] * (416 - len(top))


def test_initial_deal_and_blackjack_pays_3_to_2():
    # S0=AS S1=9H(dealer up) S2=KD: every bet holds a blackjack, finished at once.
    shoe = fixed(["AS", "9H", "KD", "7C"])
    p = BJ.play_round(shoe, [("a", 100), ("b", 101)], {})
    assert p.steps_taken == 0 and p.outcome() == {"dealer": ["9H", "7C", "TS"], "steps": 0}
    assert p.payouts() == {"a": 250, "b": 101 + 151}


def test_dealer_blackjack_takes_main_stakes_returns_extras():
    # Players 5+6=11, dealer up A. Bet a doubles (takes 2 -> 13); b hits; the dealer's next card K: blackjack.
    shoe = fixed(["5S", "AH", "6D", "2C", "KS"])
    p = BJ.play_round(shoe, [("a", 100), ("b", 100)], {1: {"a": "double", "b": "hit"}})
    assert p.outcome() == {"dealer": ["AH", "KS"], "steps": 1}
    assert p.payouts() == {"a": 100, "b": 0}


def test_split_stand_passes_card_to_split_hand_and_split_aces():
    # Shared 8,8 vs dealer 6. Step 1: split, first hand takes 3 (11). Step 2: stand; the split hand
    # (one 8) takes this same step's card T (18). Dealer 6, then the next cards.
    shoe = fixed(["8S", "6H", "8D", "3C", "TD", "TC"])
    p = BJ.play_round(shoe, [("a", 100)], {1: {"a": "split"}, 2: {"a": "stand"}})
    hands = [h.cards for h in p.bets["a"].hands]
    assert hands == [["8S", "3C"], ["8D", "TD"]]
    assert p.steps_taken == 2 and p.outcome()["dealer"] == ["6H", "TC", "TS"]  # dealer 26: bust
    assert p.payouts() == {"a": 400}
    # Aces: each split hand is finished at two cards; a split 21 is not a blackjack.
    shoe = fixed(["AS", "7H", "AD", "KC", "9D", "TC"])
    p = BJ.play_round(shoe, [("a", 100)], {1: {"a": "split"}, 2: {"a": "hit"}})
    assert [h.cards for h in p.bets["a"].hands] == [["AS", "KC"], ["AD", "9D"]]
    assert p.outcome()["dealer"] == ["7H", "TC"]  # 17: stands
    assert p.payouts() == {"a": 200 + 200}  # 21 and 20 beat 17, paid 1:1


def test_after_hit_the_split_hand_waits_for_the_next_step():
    shoe = fixed(["9S", "5H", "9D", "2C", "TD", "4C", "TH"])
    p = BJ.Play.deal(shoe, [("a", 100)])
    p.decide("a", "split")
    p.run_step()                      # first hand 9,2
    p.decide("a", "hit")
    r = p.run_step()                  # first hand 9,2,T = 21: finished; split hand does not take it
    assert r.takers == ["a"] and [h.cards for h in p.bets["a"].hands] == [["9S", "2C", "TD"], ["9D"]]
    with pytest.raises(BJ.Refused) as exc:
        p.check("a", "hit")
    assert exc.value.code == BJ.HAND_TAKES_CARD
    r = p.run_step()                  # the split hand takes 4C
    assert p.bets["a"].hands[1].cards == ["9D", "4C"]


@pytest.mark.parametrize("setup, action, code", [
    ([], "stand", None),
    ([(1, "stand")], "stand", BJ.HAND_FINISHED),                    # stand on a finished hand
    ([(1, "hit")], "double", BJ.DOUBLE_NOT_ALLOWED),                # double on three cards
    ([(1, "split")], "split", BJ.ALREADY_SPLIT),                    # a second split
    ([], "surrender", BJ.UNKNOWN_ACTION),
    ([(0, "hit")], "stand", BJ.ALREADY_DECIDED),
])
def test_refusals(setup, action, code):
    shoe = fixed(["3S", "7H", "3D", "2C", "2H", "2D", "2S"])
    p = BJ.Play.deal(shoe, [("a", 100), ("b", 100)])
    for run, act in setup:
        p.decide("a", act)
        if run:
            p.decide("b", "hit")  # another player keeps the step machine going
            p.run_step()
    before = copy.deepcopy(p)
    if code is None:
        assert p.check("a", action) == 0
        return
    with pytest.raises(BJ.Refused) as exc:
        p.decide("a", action)
    assert exc.value.code == code and p == before


def test_split_only_equal_values():
    p = BJ.Play.deal(fixed(["KS", "7H", "TD"]), [("a", 100)])
    assert BJ.SPLIT in p.allowed("a") and p.check("a", "split") == 100  # any two ten-valued cards
    p = BJ.Play.deal(fixed(["9S", "7H", "TD"]), [("a", 100)])
    with pytest.raises(BJ.Refused) as exc:
        p.check("a", "split")
    assert exc.value.code == BJ.SPLIT_NOT_ALLOWED
    with pytest.raises(BJ.Refused) as exc:
        p.check("zz", "hit")
    assert exc.value.code == BJ.NO_BET


# --- the verifier ---------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**9), st.integers(0, 6))
def test_verifier_accepts_every_honest_round(seed, n_bets):
    entries = honest_round(seed, n_bets)
    report = verify_entries(entries)
    assert report.ok, report.problems
    assert report.rounds_verified == 1


def _tamperings(entries):
    """(description, tampered entries, seq the verifier must name) for single-entry changes."""
    out = []
    for i, e in enumerate(entries):
        d = e["data"]
        def mod(fn, seq=e["seq"], i=i):
            t = copy.deepcopy(entries)
            fn(t[i]["data"])
            return rehash(t), seq
        if e["kind"] == BJ.DEALT:
            out.append(("dealt hand",) + mod(lambda d: d["hand"].reverse() if d["hand"][0] != d["hand"][1]
                                             else d.__setitem__("hand", ["ZZ", "ZZ"])))
            out.append(("dealer up",) + mod(lambda d: d.__setitem__("dealer_up", "XX")))
        elif e["kind"] == BJ.CARD:
            out.append(("step card",) + mod(lambda d: d.__setitem__("card", "XX")))
            out.append(("step number",) + mod(lambda d: d.__setitem__("step", d["step"] + 1)))
        elif e["kind"] == BJ.DECISION:
            out.append(("decision amount",) + mod(lambda d: d.__setitem__("amount", d["amount"] + 1)))
            out.append(("refused action",) + mod(lambda d: d.__setitem__("action", "surrender")))
        elif e["kind"] == J.ROUND_SETTLED:
            out.append(("dealer cards",) + mod(lambda d: d["outcome"]["dealer"].append("TS")))
            out.append(("steps",) + mod(lambda d: d["outcome"].__setitem__("steps", d["outcome"]["steps"] + 1)))
            for k in range(len(d["payouts"])):
                out.append((f"payout {k}",) + mod(lambda d, k=k: d["payouts"][k].__setitem__(
                    "payout", d["payouts"][k]["payout"] + 1)))
    # a card entry removed, a decision removed when it mattered is caught at settlement or later
    cards_at = [i for i, e in enumerate(entries) if e["kind"] == BJ.CARD]
    if cards_at:
        i = cards_at[-1]
        # the entry that now follows (a later step's decision, or the settlement) is the first bad one
        out.append(("last card removed", rehash(entries[:i] + entries[i + 1:]), entries[i]["seq"]))
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**9), st.integers(1, 4))
def test_verifier_rejects_each_single_tampering_naming_the_entry(seed, n_bets):
    entries = honest_round(seed, n_bets)
    for what, tampered, seq in _tamperings(entries):
        report = verify_entries(tampered)
        assert not report.ok, what
        assert report.first_bad_seq == seq, (what, report.problems)


def test_verifier_rejects_a_second_bet_and_a_forged_extra_decision():
    entries = honest_round(7, 2)
    bets = [e for e in entries if e["kind"] == J.BET_PLACED]
    t = copy.deepcopy(entries)
    t[bets[1]["seq"] - 1]["data"]["player"] = bets[0]["data"]["player"]
    # the client seed does not depend on the player, so only the one-bet rule catches this
    report = verify_entries(rehash(t))
    assert not report.ok and "second bet" in report.problems[0].reason
    # a decision on a bet after its hands were finished (the last step's decision re-journaled)
    decs = [e for e in entries if e["kind"] == BJ.DECISION]
    if decs:
        last_card = max(i for i, e in enumerate(entries) if e["kind"] in (BJ.CARD, BJ.DEALT))
        extra = copy.deepcopy(decs[0])
        extra["data"]["step"] = 999
        t = entries[:last_card + 1] + [extra] + entries[last_card + 1:]
        report = verify_entries(rehash(t))
        assert not report.ok and report.first_bad_seq == last_card + 2


def test_voided_round_refunds_every_stake():
    entries = honest_round(11, 3)
    while True:  # find a round with an extra stake
        decs = [e for e in entries if e["kind"] == BJ.DECISION and e["data"]["amount"] > 0]
        if decs:
            break
        entries = honest_round(random.randrange(10**9), 3)
    body = entries[:-1]
    bets = [e["data"] for e in body if e["kind"] == J.BET_PLACED]
    refunds = BJ.stakes(bets, body)
    key = {k: bets[0][k] for k in ("table_id", "chain_id", "n")}
    good = rehash(body + [{"kind": J.ROUND_VOIDED, "data": {**key, "reason": "feed_lost", "refunds": [
        {"bet_id": b, "amount": a} for b, a in refunds.items()]}}])
    assert verify_entries(good).ok and verify_entries(good).rounds_voided == 1
    short = copy.deepcopy(good)
    short[-1]["data"]["refunds"] = [{"bet_id": b["bet_id"], "amount": b["amount"]} for b in bets]
    assert not verify_entries(rehash(short)).ok


def test_fairness_doc_reference_agrees():
    """docs/FAIRNESS.md's blackjack reference replays rounds exactly as the edge's code does."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "FAIRNESS.md").read_text()
    code = next(c for c in re.findall(r"```python\n(.*?)```", doc, re.DOTALL) if "def bj_round" in c)
    ns: dict = {}
    exec(compile(code, "FAIRNESS.md", "exec"), ns)  # noqa: S102 - our own document
    rng = random.Random(8)
    for seed in range(120):
        entries = honest_round(seed, 1 + seed % 5)
        chain_seed = bytes.fromhex(entries[-1]["data"]["server_seed"])
        shoe = BJ.shoe(chain_seed, entries[-1]["data"]["client_seed"], 1)
        if seed % 2:  # shoes rich in pairs and aces as well
            shoe = [rng.choice(["AS", "8H", "8D", "TS", "KD", "2C", "5H", "6S"]) for _ in range(60)] + shoe[60:]
        bets = [(e["data"]["bet_id"], e["data"]["amount"]) for e in entries if e["kind"] == J.BET_PLACED]
        decisions = {}
        for s in range(1, 25):
            for b, _ in bets:
                if rng.random() < 0.7:
                    decisions[(s, b)] = rng.choice(BJ.ACTIONS)
        # keep only what the rules accept, as the journal would
        p = BJ.Play.deal(shoe, bets)
        kept = {}
        while not p.players_done:
            for b, _ in bets:
                a = decisions.get((p.step, b))
                if a:
                    try:
                        p.decide(b, a)
                        kept[(p.step, b)] = a
                    except BJ.Refused:
                        pass
            p.run_step()
        out, pay, shown = ns["bj_round"](shoe, bets, kept)
        assert out == p.outcome() and pay == p.payouts()
        assert shown == shoe[3:3 + p.steps_taken]
