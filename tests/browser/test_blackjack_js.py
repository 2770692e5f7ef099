"""The browser's blackjack rules and round verification (web/static/blackjack.js) against contract/blackjack.py."""
from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from contract import blackjack as BJ
from contract import journal as J
from tests.contract.blackjack_rounds import honest_round, rehash

pytestmark = pytest.mark.browser


@pytest.fixture
def fair(page: Any, edge: Any) -> Any:
    page.goto(f"{edge.url}/play/blackjack.js")  # same origin, secure context (loopback)
    return page


def js(page: Any, body: str, arg: Any) -> Any:
    return page.evaluate(f"async (arg) => {{ const B = await import('/play/blackjack.js'); {body} }}", arg)


def proof_of(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The shape of GET /v1/tables/{id}/rounds/{chain}/{n} for a settled round."""
    chain = entries[0]["data"]
    settled = entries[-1]["data"]
    bets = [e["data"] for e in entries if e["kind"] == J.BET_PLACED]
    return {"status": "settled", "game": "blackjack", "n": settled["n"], "commitment": chain["commitment"],
            "server_seed": settled["server_seed"], "client_seed": settled["client_seed"],
            "outcome": settled["outcome"], "payouts": settled["payouts"],
            "bets": [{k: b[k] for k in ("bet_id", "player_seed", "spot", "amount")} for b in bets],
            "entries": entries}


def test_rules_match_python_on_random_plays(fair: Any) -> None:
    rng = random.Random(21)
    low = ["AS", "AH", "2C", "3D", "4S", "5H", "6C", "7D", "8S", "8H", "9C", "TD", "KS", "QH"]
    cases = []
    for _ in range(150):
        shoe = [rng.choice(low) for _ in range(80)]
        bets = [(f"b{i}", rng.choice((100, 101, 2500))) for i in range(rng.randint(1, 4))]
        decisions = {s: {b: rng.choice(BJ.ACTIONS) for b, _ in bets if rng.random() < 0.8} for s in range(1, 30)}
        p = BJ.play_round(shoe, bets, decisions)
        cases.append({"shoe": shoe, "bets": bets, "decisions": {str(k): v for k, v in decisions.items()},
                      "want": {"outcome": p.outcome(), "payouts": p.payouts(),
                               "hands": {b: [h.cards for h in bp.hands] for b, bp in p.bets.items()}}})
    got = js(fair, """
        return arg.map((c) => {
          const p = new B.Play(c.shoe, c.bets);
          while (!p.playersDone) {
            for (const [b, a] of Object.entries(c.decisions[String(p.step)] || {})) {
              try { p.decide(b, a); } catch (e) { if (!(e instanceof B.Refused)) throw e; }
            }
            p.runStep();
          }
          const hands = {};
          for (const [id, b] of p.bets) hands[id] = b.hands.map((h) => h.cards);
          return {outcome: p.outcome(), payouts: Object.fromEntries(p.payouts()), hands};
        });""", cases)
    for c, g in zip(cases, got):
        assert g == c["want"], c


def test_totals_match_python(fair: Any) -> None:
    rng = random.Random(3)
    hands = [[rng.choice("A23456789TJQK") + "S" for _ in range(rng.randint(1, 8))] for _ in range(300)]
    got = js(fair, "return arg.map((h) => B.total(h));", hands)
    assert got == [list(BJ.total(h)) for h in hands]


def test_verify_round_accepts_honest_and_rejects_tampered(fair: Any) -> None:
    proofs, bad = [], []
    for seed in range(12):
        entries = honest_round(seed, 1 + seed % 4)
        proofs.append(proof_of(entries))
        cards = [i for i, e in enumerate(entries) if e["kind"] == BJ.CARD]
        t = copy.deepcopy(entries)
        if cards:
            t[cards[0]]["data"]["card"] = "XX"                    # a step card not from the shoe
        else:
            t[-1]["data"]["outcome"]["steps"] += 1
        bad.append(proof_of(rehash(t)))
        t = copy.deepcopy(entries)
        t[-1]["data"]["payouts"][0]["payout"] += 1                # a payout off by one cent
        bad.append(proof_of(rehash(t)))
        dealt = next(i for i, e in enumerate(entries) if e["kind"] == BJ.DEALT)
        t = copy.deepcopy(entries)
        t[dealt]["data"]["dealer_up"] = "ZZ"                      # a dealt card not from the shoe
        bad.append(proof_of(rehash(t)))
    got = js(fair, """
        const good = [], bad = [];
        for (const p of arg.proofs) {
          const r = await B.verifyRound(p, p.commitment);
          good.push({ok: r.ok, names: r.steps.map((s) => s.name), failed: r.steps.filter((s) => !s.ok)});
        }
        for (const p of arg.bad) bad.push((await B.verifyRound(p, p.commitment)).ok);
        return {good, bad};""", {"proofs": proofs, "bad": bad})
    for g in got["good"]:
        assert g["ok"], g["failed"]
        assert g["names"] == ["commitment", "chain", "client_seed", "hands", "outcome", "payouts"]
    assert got["bad"] == [False] * len(bad)


def test_my_decisions_must_be_the_journaled_ones(fair: Any) -> None:
    entries = honest_round(5, 2)
    while not any(e["kind"] == BJ.DECISION for e in entries):
        entries = honest_round(random.randrange(10**6), 2)
    proof = proof_of(entries)
    d = next(e["data"] for e in entries if e["kind"] == BJ.DECISION)
    mine = [{"step": e["data"]["step"], "action": e["data"]["action"]} for e in entries
            if e["kind"] == BJ.DECISION and e["data"]["bet_id"] == d["bet_id"]]
    other = [dict(x) for x in mine]
    other[0]["action"] = "stand" if other[0]["action"] != "stand" else "hit"
    got = js(fair, """
        const a = await B.verifyRound(arg.proof, arg.proof.commitment, arg.bet, arg.mine);
        const b = await B.verifyRound(arg.proof, arg.proof.commitment, arg.bet, arg.other);
        return [a.ok, b.ok, a.steps.map((s) => s.name)];""",
              {"proof": proof, "bet": d["bet_id"], "mine": mine, "other": other})
    assert got[0] is True and got[1] is False and "my_decisions" in got[2]
