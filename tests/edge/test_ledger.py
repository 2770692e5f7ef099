"""The ledger under any interleaving: every account sums to zero, no player balance negative."""
from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract import fairness
from edge_agent.casino import Casino
from edge_agent.domain import ledger as L
from edge_agent.domain.errors import DomainError
from tests.edge.conftest import edge_config, fund

PLAYERS = ["p0", "p1", "p2"]
op = st.one_of(
    st.tuples(st.just("bet"), st.sampled_from(PLAYERS), st.sampled_from(["roulette-1", "baccarat-1"]),
              st.integers(0, 60), st.integers(-100, 30_000)),
    st.tuples(st.just("deposit"), st.sampled_from(PLAYERS), st.integers(1, 20_000)),
    st.tuples(st.just("withdraw"), st.sampled_from(PLAYERS), st.integers(1, 20_000)),
    st.tuples(st.just("settle"), st.sampled_from(["roulette-1", "baccarat-1"])),
    st.tuples(st.just("void"), st.sampled_from(["roulette-1", "baccarat-1"])),
    st.tuples(st.just("exclude"), st.sampled_from(PLAYERS)),
)


def _check(c: Casino) -> None:
    bal = c.state.ledger.balances
    assert sum(bal.values()) == 0
    for acct, v in bal.items():
        if acct not in (L.HOUSE, L.WORLD):
            assert v >= 0, (acct, v)


async def _run(ops) -> None:
    with tempfile.TemporaryDirectory() as d:
        c = Casino(edge_config(Path(d)))
        await c.start(run_tables=False)
        psn = {p: c.ensure_player(p) for p in PLAYERS}
        spots = {"roulette-1": fairness.roulette_spots(), "baccarat-1": sorted(fairness.BACCARAT_SPOTS)}
        for o in ops:
            try:
                if o[0] == "bet":
                    _, p, t, s, amount = o
                    if c.state.tables[t].round is None:
                        c.open_round(t)
                    # Many bets of one player in flight at once: placed without awaiting each ack.
                    c.place_bet(psn[p], t, spots[t][s % len(spots[t])], amount)
                elif o[0] == "deposit":
                    await fund(c, psn[o[1]], o[2])
                elif o[0] == "withdraw":
                    c.request_withdrawal(psn[o[1]], o[2])
                elif o[0] == "settle" and c.state.tables[o[1]].round is not None:
                    await c.settle_round(o[1])
                elif o[0] == "void" and c.state.tables[o[1]].round is not None:
                    await c.void_round(o[1], "dealer_error", "test")
                elif o[0] == "exclude":
                    c.exclude(psn[o[1]], "break", "1d")
            except DomainError:
                pass
            _check(c)
        await c.stop()
        _check(c)
        # Replaying the journal rebuilds exactly the same balances.
        balances = {k: v for k, v in c.state.ledger.balances.items() if v}
        c.close()
        c2 = Casino(edge_config(Path(d)))
        assert {k: v for k, v in c2.state.ledger.balances.items() if v} == balances
        c2.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, max_size=40))
def test_ledger_invariants_under_any_interleaving(ops):
    asyncio.run(_run(ops))


async def test_concurrent_bets_of_one_player_never_overdraw(casino):
    psn = casino.ensure_player("eve")
    await fund(casino, psn, 1_000)
    casino.open_round("roulette-1")

    async def one(spot):
        try:
            return await casino.bet(psn, "roulette-1", spot, 300)
        except DomainError as e:
            return e.code

    results = await asyncio.gather(*(one(s) for s in ["red", "black", "odd", "even", "low", "high"]))
    accepted = [r for r in results if isinstance(r, dict)]
    assert len(accepted) == 3 and results.count("insufficient_funds") == 3
    assert casino.state.cash(psn) == 100 and casino.state.in_play(psn) == 900
