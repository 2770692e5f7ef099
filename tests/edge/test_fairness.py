"""Fairness functions of CONTRACT section 3: uniformity, shuffle orders, tableau, paytable."""
from __future__ import annotations

import hashlib
import itertools
import os
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from contract import fairness as F


def _stream(values):
    return iter(values)


@given(m=st.integers(1, 2**32), u=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=5))
def test_uniform_rejects_only_the_biased_tail(m, u):
    limit = 2**32 - (2**32 % m)
    accepted = [x for x in u if x < limit]
    if accepted:
        assert F.uniform(_stream(u), m) == accepted[0] % m


def test_uniform_is_exactly_uniform_over_the_accepted_range():
    # Every residue below m is hit by exactly limit/m accepted u values: no modulo bias.
    for m in (3, 36, 37, 416, 1000):
        limit = 2**32 - (2**32 % m)
        assert limit % m == 0


def test_roulette_draw_chi_square():
    seed = hashlib.sha256(b"chi").digest()
    counts = Counter(F.outcome("roulette", seed, F.client_seed([]), n)["number"] for n in range(1, 37 * 400 + 1))
    expected = 400
    chi2 = sum((counts[k] - expected) ** 2 / expected for k in range(37))
    # 36 degrees of freedom: P(chi2 > 67) < 0.001.
    assert set(counts) == set(range(37)) and chi2 < 67, chi2


def _shuffle4(stream):
    items = [0, 1, 2, 3]
    for i in range(3, 0, -1):
        j = F.uniform(stream, i + 1)
        items[i], items[j] = items[j], items[i]
    return tuple(items)


def test_all_24_orders_of_4_items_equally_likely():
    # Exhaustive: with draws j3 in 0..3, j2 in 0..2, j1 in 0..1 each combination gives a distinct order.
    orders = {_shuffle4(iter([j3, j2, j1])) for j3 in range(4) for j2 in range(3) for j1 in range(2)}
    assert orders == set(itertools.permutations(range(4)))
    # Statistically, through the real HMAC byte stream.
    seed = os.urandom(32)
    n = 24 * 500
    counts = Counter(_shuffle4(F.byte_stream(seed, "cs", k)) for k in range(n))
    chi2 = sum((c - 500) ** 2 / 500 for c in counts.values())
    assert len(counts) == 24 and chi2 < 49.7, chi2  # 23 dof, p < 0.002


@settings(max_examples=60)
@given(seed=st.binary(min_size=32, max_size=32), n=st.integers(1, 10_000))
def test_baccarat_deal_follows_the_tableau(seed, n):
    out = F.outcome("baccarat", seed, F.client_seed([("b1", "x")]), n)
    p, b = out["player"], out["banker"]
    tot = lambda h: sum(F.card_value(c) for c in h) % 10
    p2, b2 = tot(p[:2]), tot(b[:2])
    assert 2 <= len(p) <= 3 and 2 <= len(b) <= 3
    if p2 >= 8 or b2 >= 8:
        assert len(p) == len(b) == 2
    else:
        assert (len(p) == 3) == (p2 <= 5)
        third = F.card_value(p[2]) if len(p) == 3 else None
        assert (len(b) == 3) == F.banker_draws(b2, third)
    pt, bt = tot(p), tot(b)
    assert out["winner"] == ("player" if pt > bt else "banker" if bt > pt else "tie")


def test_banker_tableau_table():
    # Banker total vs player's third card: draw (D) or stand (S), the standard punto banco table.
    table = {3: "DDDDDDDDSD", 4: "SSDDDDDDSS", 5: "SSSSDDDDSS", 6: "SSSSSSDDSS"}
    for total, row in table.items():
        for third, mark in enumerate(row):
            assert F.banker_draws(total, third) == (mark == "D"), (total, third)
    assert all(F.banker_draws(t, x) for t in (0, 1, 2) for x in range(10))
    assert not any(F.banker_draws(7, x) for x in range(10))
    assert F.banker_draws(5, None) and not F.banker_draws(6, None)


def test_shoe_is_a_permutation_and_codes_follow_contract():
    shoe = F.shuffled_shoe(F.byte_stream(os.urandom(32), "x", 1))
    assert sorted(shoe) == list(range(416))
    assert F.card_code(0) == "AS" and F.card_code(9) == "TS" and F.card_code(13) == "AH" and F.card_code(52) == "AS"


def test_seed_chain_and_commitment():
    chain = F.derive_chain(os.urandom(32), 10)
    for n in range(1, 11):
        assert F.seed_matches_commitment(chain[n].hex(), n, chain[0].hex())
        assert not F.seed_matches_commitment(chain[n].hex(), n + 1, chain[0].hex())
    assert F.client_seed([]) == hashlib.sha256(b"").hexdigest()
    assert F.client_seed([("a", "x"), ("b", "")]) == hashlib.sha256(b"a:x\nb:\n").hexdigest()


def test_paytable():
    P = F.payout
    assert P("roulette", "straight:17", 100, {"number": 17}) == 3600
    assert P("roulette", "straight:0", 100, {"number": 0}) == 3600
    assert P("roulette", "red", 100, {"number": 1}) == 200 and P("roulette", "black", 100, {"number": 1}) == 0
    for spot in ("red", "black", "odd", "even", "low", "high", "dozen:1", "column:1"):
        assert P("roulette", spot, 100, {"number": 0}) == 0
    assert P("roulette", "dozen:2", 100, {"number": 24}) == 300 and P("roulette", "dozen:2", 100, {"number": 25}) == 0
    assert P("roulette", "column:1", 100, {"number": 34}) == 300 and P("roulette", "column:3", 100, {"number": 36}) == 300
    assert P("roulette", "high", 100, {"number": 19}) == 200 and P("roulette", "low", 100, {"number": 18}) == 200
    assert P("baccarat", "banker", 1000, {"winner": "banker"}) == 1950
    assert P("baccarat", "banker", 999, {"winner": "banker"}) == 999 + 949
    assert P("baccarat", "player", 1000, {"winner": "player"}) == 2000
    assert P("baccarat", "tie", 100, {"winner": "tie"}) == 900
    assert P("baccarat", "player", 100, {"winner": "tie"}) == 100 and P("baccarat", "banker", 100, {"winner": "tie"}) == 100
    assert P("baccarat", "player", 100, {"winner": "banker"}) == 0


@given(n=st.integers(0, 36))
def test_every_number_pays_its_straight_and_evens(n):
    wins = [s for s in F.roulette_spots() if F.payout("roulette", s, 1, {"number": n}) > 0]
    if n == 0:
        assert wins == ["straight:0"]
    else:
        # a straight, red|black, odd|even, low|high, one dozen, one column
        assert len(wins) == 6
