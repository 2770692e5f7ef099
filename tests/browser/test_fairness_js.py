"""The browser's WebCrypto fairness code (web/static/fairness.js) against contract/fairness.py."""
from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest

from contract import fairness

pytestmark = pytest.mark.browser


def _vectors(rng: random.Random, game: str, count: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        seed = rng.randbytes(32)
        bets = [{"bet_id": f"mt-1-{rng.randrange(10**6)}", "player_seed": rng.choice(["", "lucky", "ünïcode ✓", "a:b\n"])}
                for _ in range(rng.randrange(0, 4))]
        cs = fairness.client_seed((b["bet_id"], b["player_seed"]) for b in bets)
        n = rng.randrange(1, 60)
        out.append({"game": game, "seed": seed.hex(), "n": n, "bets": bets, "client_seed": cs,
                    "outcome": fairness.outcome(game, seed, cs, n)})
    return out


@pytest.fixture
def fair(page: Any, edge: Any) -> Any:
    page.goto(f"{edge.url}/play/fairness.js")  # same origin, secure context (loopback)
    return page


def js(page: Any, body: str, arg: Any) -> Any:
    return page.evaluate(f"async (arg) => {{ const F = await import('/play/fairness.js'); {body} }}", arg)


def test_outcomes_match_python_byte_for_byte(fair: Any) -> None:
    rng = random.Random(6)
    vectors = _vectors(rng, "roulette", 60) + _vectors(rng, "baccarat", 25)
    got = js(fair, """
        const out = [];
        for (const v of arg) {
          const cs = await F.clientSeed(v.bets);
          const o = await F.outcome(v.game, v.seed, cs, v.n);
          out.push({cs, o: F.canonical(o)});
        }
        return out;""", vectors)
    for v, g in zip(vectors, got):
        assert g["cs"] == v["client_seed"]
        assert g["o"] == json.dumps(v["outcome"], sort_keys=True, separators=(",", ":"), ensure_ascii=False), v


def test_uniform_rejection_sampling_and_stream(fair: Any) -> None:
    """Small and awkward moduli exercise rejection; the raw u32 stream matches block by block."""
    seed = bytes(range(32))
    cs = hashlib.sha256(b"x").hexdigest()
    stream = fairness.byte_stream(seed, cs, 7)
    raw = [next(stream) for _ in range(40)]
    mods = [1, 2, 3, 37, 416, 2**31 + 1, 2**32 - 1, 3_000_000_000]
    stream = fairness.byte_stream(seed, cs, 7)
    expect = [fairness.uniform(stream, m) for m in mods for _ in range(5)]
    got = js(fair, """
        let s = await F.ByteStream.create(arg.seed, arg.cs, 7);
        const raw = []; for (let i = 0; i < 40; i++) raw.push(await s.next());
        s = await F.ByteStream.create(arg.seed, arg.cs, 7);
        const u = []; for (const m of arg.mods) for (let i = 0; i < 5; i++) u.push(await F.uniform(s, m));
        return {raw, u};""", {"seed": seed.hex(), "cs": cs, "mods": mods})
    assert got["raw"] == raw
    assert got["u"] == expect


def test_chain_check_and_payouts(fair: Any) -> None:
    chain = fairness.derive_chain(bytes([7]) * 32, 12)
    spots = fairness.roulette_spots()
    cases = [{"game": "roulette", "spot": s, "stake": st, "result": {"number": k}}
             for s in spots for k in (0, 1, 2, 3, 12, 13, 18, 19, 34, 36) for st in (100, 2501)]
    for w in ("player", "banker", "tie"):
        for s in ("player", "banker", "tie"):
            for st in (100, 101, 2599, 10**15):
                cases.append({"game": "baccarat", "spot": s, "stake": st, "result": {"winner": w}})
    expect = [fairness.payout(c["game"], c["spot"], c["stake"], c["result"]) for c in cases]
    got = js(fair, """
        const ok = [];
        for (let n = 1; n <= 12; n++) ok.push(await F.seedMatchesCommitment(arg.chain[n], n, arg.chain[0]));
        ok.push(await F.seedMatchesCommitment(arg.chain[3], 2, arg.chain[0]));   // wrong n
        ok.push(await F.seedMatchesCommitment(arg.chain[3].slice(2), 3, arg.chain[0]));  // 31 bytes
        ok.push(await F.seedMatchesCommitment("zz" + arg.chain[3].slice(2), 3, arg.chain[0]));  // not hex
        const pay = arg.cases.map((c) => F.payout(c.game, c.spot, c.stake, c.result));
        return {ok, pay};""", {"chain": [c.hex() for c in chain], "cases": cases})
    assert got["ok"] == [True] * 12 + [False, False, False]
    assert got["pay"] == expect


def test_verify_round_detects_tampering(fair: Any) -> None:
    chain = fairness.derive_chain(bytes([9]) * 32, 5)
    bets = [{"bet_id": "mt-1-40", "player_seed": "s", "spot": "red", "amount": 500},
            {"bet_id": "mt-1-41", "player_seed": "", "spot": "straight:7", "amount": 100}]
    cs = fairness.client_seed((b["bet_id"], b["player_seed"]) for b in bets)
    out = fairness.outcome("roulette", chain[4], cs, 4)
    proof = {"status": "settled", "game": "roulette", "n": 4, "commitment": chain[0].hex(),
             "server_seed": chain[4].hex(), "client_seed": cs, "outcome": out, "bets": bets,
             "payouts": [{"bet_id": b["bet_id"], "payout": fairness.payout("roulette", b["spot"], b["amount"], out)}
                         for b in bets]}
    other = (out["number"] + 1) % 37
    tampered = [
        {**proof, "outcome": {"number": other}},                       # outcome not from the seeds
        {**proof, "server_seed": chain[3].hex()},                       # seed of another round
        {**proof, "bets": bets[:1]},                                    # a bet left out of the client seed
        {**proof, "payouts": [{**proof["payouts"][0], "payout": proof["payouts"][0]["payout"] + 1},
                              proof["payouts"][1]]},                    # a payout off by one cent
        {**proof, "commitment": chain[1].hex()},                        # commitment swapped
    ]
    got = js(fair, """
        const good = await F.verifyRound(arg.proof, arg.proof.commitment);
        const bad = [];
        for (const p of arg.tampered) bad.push((await F.verifyRound(p, arg.proof.commitment)).ok);
        return {good: good.ok, steps: good.steps.map((s) => s.name), bad};""",
              {"proof": proof, "tampered": tampered})
    assert got["good"] is True
    assert got["steps"] == ["commitment", "chain", "client_seed", "outcome", "payouts"]
    assert got["bad"] == [False] * len(tampered)


def test_baccarat_tableau_every_case(fair: Any) -> None:
    """Every two-card total pair and third card: the drawing rules agree with the reference."""
    rng = random.Random(13)
    shoes = []
    by_rank = {r: [c for c in range(52) if c % 13 == r] for r in range(13)}
    for p1 in range(10):
        for p2 in range(10):
            for b1 in range(10):
                for b2 in range(10):
                    # rank index r has value r+1 for r < 9 and 0 for T/J/Q/K (r = 9..12)
                    pick = [rng.choice(by_rank[v - 1] if v else by_rank[9 + rng.randrange(4)])
                            for v in (p1, b1, p2, b2)]
                    shoes.append(pick + [rng.randrange(416), rng.randrange(416)])
    expect = [fairness.deal_baccarat(s) for s in shoes]
    got = js(fair, "return arg.map((s) => F.dealBaccarat(s));", shoes)
    assert got == expect
