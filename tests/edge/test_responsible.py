"""Responsible gambling enforced at bet and deposit time."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from contract import sync as S
from edge_agent.casino import Casino
from edge_agent.domain import responsible as RG
from edge_agent.domain.errors import DomainError
from tests.edge.conftest import edge_config


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
async def timed(tmp_path: Path):
    clock = Clock()
    c = Casino(edge_config(tmp_path), clock=clock)
    await c.start(run_tables=False)
    yield c, clock
    await c.stop()
    c.close()


_DEPOSITS = itertools.count(1)


async def _deposit(c, psn, amount):
    n = next(_DEPOSITS)
    await c.apply_command(S.DepositCredit(id=f"c{n}", ts=0, deposit_id=f"d{n}", player=psn, amount=amount,
                                          currency="EUR"))
    return c.state.deposits[f"d{n}"]


async def test_deposit_limit_decrease_now_increase_after_cooling_off(timed):
    c, clock = timed
    psn = c.ensure_player("p")
    c.set_limit(psn, "deposit", "24h", 10_000)
    assert await _deposit(c, psn, 8_000) == "credited"
    assert await _deposit(c, psn, 3_000) == "refused"  # would exceed 10,000 in 24 h
    before = c.state.cash(psn)
    with pytest.raises(DomainError) as e:
        c.request_deposit(psn, 3_000)
    assert e.value.code == "deposit_limit_exceeded" and c.state.cash(psn) == before
    # An increase waits 24 h; until then the old limit holds.
    eff = c.set_limit(psn, "deposit", "24h", 50_000)["data"]["effective_ts"]
    assert eff == clock.now + RG.COOLING_OFF
    view = c.limits_view(psn)["limits"]["deposit_24h"]
    assert view["amount"] == 10_000 and view["pending_amount"] == 50_000
    assert await _deposit(c, psn, 3_000) == "refused"
    clock.now += RG.COOLING_OFF + 1
    assert await _deposit(c, psn, 3_000) == "credited"
    # A decrease applies at once and cancels the pending increase.
    c.set_limit(psn, "deposit", "24h", 60_000)
    c.set_limit(psn, "deposit", "24h", 5_000)
    assert c.limits_view(psn)["limits"]["deposit_24h"] == {"amount": 5_000}


async def test_lowest_overlapping_limit_applies(timed):
    c, clock = timed
    psn = c.ensure_player("p")
    c.set_limit(psn, "deposit", "24h", 10_000)
    c.set_limit(psn, "deposit", "7d", 12_000)
    assert await _deposit(c, psn, 9_000) == "credited"
    clock.now += RG.DAY + RG.HOUR  # the 24 h window is clear, the 7-day one is not
    assert await _deposit(c, psn, 4_000) == "refused"
    assert await _deposit(c, psn, 3_000) == "credited"


async def test_loss_limit_counts_open_stakes(timed):
    c, _clock = timed
    psn = c.ensure_player("p")
    await _deposit(c, psn, 100_000)
    c.set_limit(psn, "loss", "24h", 1_000)
    c.open_round("roulette-1")
    c.place_bet(psn, "roulette-1", "red", 600)
    with pytest.raises(DomainError) as e:
        c.place_bet(psn, "roulette-1", "black", 600)
    assert e.value.code == "loss_limit_reached"
    c.place_bet(psn, "roulette-1", "black", 400)


async def test_break_and_exclusion_refuse_and_refund(timed):
    c, clock = timed
    psn, other = c.ensure_player("p"), c.ensure_player("q")
    await _deposit(c, psn, 10_000)
    await _deposit(c, other, 10_000)
    c.start_session(psn)
    c.open_round("roulette-1")
    c.place_bet(psn, "roulette-1", "red", 1_000)
    c.place_bet(other, "roulette-1", "red", 1_000)
    c.exclude(psn, "self_exclusion", "6m")
    assert c.state.cash(psn) == 10_000 and c.state.in_play(psn) == 0  # refunded
    assert c.state.player(psn).session_id is None                     # session ended
    with pytest.raises(DomainError) as e:
        c.place_bet(psn, "roulette-1", "red", 100)
    assert e.value.code in ("player_excluded", "betting_closed")
    c.open_round("roulette-1")
    with pytest.raises(DomainError) as e:
        c.place_bet(psn, "roulette-1", "red", 100)
    assert e.value.code == "player_excluded"
    with pytest.raises(DomainError):
        c.request_deposit(psn, 100)
    # Cannot be lifted early: a shorter one does not shorten it.
    until = c.state.player(psn).excluded_until
    c.exclude(psn, "self_exclusion", "6m")
    clock.now += 100 * RG.DAY
    assert c.state.player(psn).excluded_until >= until
    clock.now += 90 * RG.DAY
    c.open_round("baccarat-1")
    c.place_bet(psn, "baccarat-1", "player", 100)  # after six months (182 d), play resumes
    with pytest.raises(DomainError):
        c.exclude(psn, "self_exclusion", "2w")


async def test_break_durations_and_remote_exclusion_is_idempotent(timed):
    c, clock = timed
    psn = c.ensure_player("p")
    e = c.exclude(psn, "break", "1w")
    assert e["data"]["until_ts"] == clock.now + 7 * RG.DAY
    cmd = S.PlayerExclude(id="x1", ts=0, player=psn, until_ts=clock.now + 365 * RG.DAY, origin_edge="on-1")
    first = await c.apply_command(cmd)
    again = await c.apply_command(cmd)
    assert len(first) == 2 and again == []
    assert c.state.player(psn).excluded_until == clock.now + 365 * RG.DAY


async def test_session_clock_net_position_and_reality_check(timed):
    c, clock = timed
    psn = c.ensure_player("p")
    await _deposit(c, psn, 10_000)
    c.set_reality_check(psn, 30)
    c.start_session(psn)
    c.open_round("roulette-1")
    c.place_bet(psn, "roulette-1", "straight:5", 100)
    await c.settle_round("roulette-1")
    w = c.wallet(psn)["session"]
    assert w["staked"] == 100 and w["net_position"] in (-100, 3_500)
    rg = c.state.player(psn)
    assert RG.reality_checks_due(rg, clock.now, 0) == 0
    clock.now += 61 * RG.MINUTE
    w = c.wallet(psn)["session"]
    assert w["elapsed_ms"] == 61 * RG.MINUTE
    assert RG.reality_checks_due(rg, clock.now, 0) == 2
    assert RG.reality_checks_due(rg, clock.now, 2) == 0


async def test_deposit_declined_by_the_psp_closes_the_request_once(tmp_path):
    from contract import sync as S
    from edge_agent.casino import Casino
    from tests.edge.conftest import edge_config

    c = Casino(edge_config(tmp_path))
    await c.start(run_tables=False)
    psn = c.ensure_player("p")
    dep = c.request_deposit(psn, 2_500)["data"]["deposit_id"]
    q = c.events.subscribe(f"player:{psn}")
    cmd = S.DepositDeclined(id="x-1", ts=0, deposit_id=dep, player=psn, amount=2_500, reason="card_declined")
    assert len(await c.apply_command(cmd)) == 2
    assert c.state.deposits[dep] == "declined" and c.state.cash(psn) == 0
    assert (await q.get()) == {"type": "deposit.declined", "deposit_id": dep, "reason": "card_declined"}
    seq = c.store.seq
    assert await c.apply_command(cmd) == []  # redelivered: nothing happens
    late = S.DepositCredit(id="x-2", ts=0, deposit_id=dep, player=psn, amount=2_500, currency="EUR")
    kinds = [e["kind"] for e in await c.apply_command(late)]
    assert kinds == [S.COMMAND_APPLIED] and c.state.cash(psn) == 0 and c.store.seq == seq + 1
    await c.stop()
    c.close()
