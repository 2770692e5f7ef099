"""Pure rules: KYC state machine, AML thresholds, discovery ranking."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.config import AmlConfig
from control_plane.domain import aml, kyc
from control_plane.domain.discovery import EdgeView, candidates

DAY_MS = 86_400_000
T0 = 1_764_000_000_000 - (1_764_000_000_000 % DAY_MS) + 12 * 3600_000  # noon UTC: mid gaming day


# --- KYC -----------------------------------------------------------------------------------------

def test_kyc_happy_paths() -> None:
    assert kyc.transition("unverified", "pending") == "pending"
    for end in ("verified", "rejected", "edd_required"):
        assert kyc.transition("pending", end) == end
    assert kyc.transition("edd_required", "suspended") == "suspended"
    assert kyc.transition("verified", "suspended") == "suspended"


@pytest.mark.parametrize("cur,target", [("unverified", "verified"), ("pending", "suspended"),
                                        ("verified", "pending"), ("suspended", "verified"),
                                        ("rejected", "verified"), ("pending", "bogus")])
def test_kyc_illegal_transitions_refused(cur: str, target: str) -> None:
    with pytest.raises(kyc.IllegalTransition):
        kyc.transition(cur, target)


@given(st.sampled_from(kyc.STATUSES), st.sampled_from(kyc.STATUSES))
def test_kyc_transition_table_is_the_only_authority(cur: str, target: str) -> None:
    allowed = target in kyc.TRANSITIONS[cur]
    try:
        kyc.transition(cur, target)
        assert allowed
    except kyc.IllegalTransition:
        assert not allowed


def test_only_verified_may_withdraw() -> None:
    assert [s for s in kyc.STATUSES if kyc.can_withdraw(s)] == ["verified"]


# --- AML -----------------------------------------------------------------------------------------

CFG = AmlConfig()


def ops(*amounts: int, currency: str = "EUR", start: int = T0 - 3600_000, step: int = 60_000) -> list[aml.Operation]:
    return [aml.Operation(start + i * step, a, currency, "deposit") for i, a in enumerate(amounts)]


def kinds(flags: list[aml.Flag]) -> set[str]:
    return {f.kind for f in flags}


def test_cdd_at_eur_2000_single_operation() -> None:
    assert "cdd" not in kinds(aml.flags_for(CFG, T0, 199_999, "EUR", [], "withdrawal"))
    assert "cdd" in kinds(aml.flags_for(CFG, T0, 200_000, "EUR", [], "withdrawal"))


def test_cdd_counts_linked_operations_within_the_window_only() -> None:
    assert "cdd" in kinds(aml.flags_for(CFG, T0, 50_000, "EUR", ops(100_000, 50_000), "withdrawal"))
    old = ops(150_000, start=T0 - CFG.cdd_window_s * 1000 - 1)
    assert "cdd" not in kinds(aml.flags_for(CFG, T0, 100_000, "EUR", old, "withdrawal"))
    # Another currency is not linked into a EUR threshold.
    assert "cdd" not in kinds(aml.flags_for(CFG, T0, 100_000, "EUR", ops(150_000, currency="GBP"), "withdrawal"))


def test_ctr_above_usd_10000_per_gaming_day_aggregated() -> None:
    assert "ctr" not in kinds(aml.flags_for(CFG, T0, 1_000_000, "USD", [], "withdrawal"))  # not above
    assert "ctr" in kinds(aml.flags_for(CFG, T0, 1_000_001, "USD", [], "withdrawal"))
    same_day = ops(400_000, 300_000, currency="USD")
    assert "ctr" in kinds(aml.flags_for(CFG, T0, 300_001, "USD", same_day, "withdrawal"))
    assert "ctr" not in kinds(aml.flags_for(CFG, T0, 300_000, "USD", same_day, "withdrawal"))


def test_gaming_day_boundary_splits_the_aggregate() -> None:
    start = CFG.gaming_day_start_hour_utc * 3600_000
    day_start = T0 - (T0 % DAY_MS) + start
    before = ops(900_000, currency="USD", start=day_start - 60_000)  # previous gaming day
    assert aml.gaming_day(day_start - 60_000, CFG.gaming_day_start_hour_utc) + 1 == \
        aml.gaming_day(day_start, CFG.gaming_day_start_hour_utc)
    assert "ctr" not in kinds(aml.flags_for(CFG, day_start + 60_000, 200_000, "USD", before, "withdrawal"))


def test_structuring_just_under_a_threshold_goes_to_review() -> None:
    under = ops(195_000, 190_000)  # EUR, just under the 2,000 CDD threshold
    d = aml.decide_withdrawal(CFG, kyc_status="verified", now_ms=T0, amount=198_000, currency="EUR",
                              history=[aml.Operation(T0 - 10 * DAY_MS, 199_000, "EUR", "deposit")] +
                              [aml.Operation(o.ts_ms, o.amount, o.currency, "withdrawal") for o in under])
    assert d.action == "review" and "structuring" in kinds(d.flags)


def test_two_amounts_just_under_are_not_yet_structuring() -> None:
    d = aml.decide_withdrawal(CFG, kyc_status="verified", now_ms=T0, amount=480_000, currency="USD",
                              history=ops(470_000, currency="USD", start=T0 - 20 * DAY_MS))
    assert d.action == "approve"


def test_usd_structuring_under_the_ctr_threshold() -> None:
    hist = ops(950_000, 960_000, currency="USD", start=T0 - 3 * 3600_000)
    d = aml.decide_withdrawal(CFG, kyc_status="verified", now_ms=T0, amount=990_000, currency="USD", history=hist)
    assert d.action == "review"
    assert "ctr" in kinds(d.flags)  # the aggregate is reportable as well


def test_unverified_kyc_refuses_before_aml() -> None:
    for status in ("unverified", "pending", "rejected", "edd_required", "suspended"):
        d = aml.decide_withdrawal(CFG, kyc_status=status, now_ms=T0, amount=100, currency="EUR", history=[])
        assert d.action == "refuse" and d.reason == f"kyc_{status}"


@given(st.lists(st.integers(min_value=1, max_value=150_000), max_size=8), st.integers(1, 300_000))
def test_cdd_flag_iff_linked_sum_reaches_threshold(history: list[int], amount: int) -> None:
    flags = aml.flags_for(CFG, T0, amount, "EUR", ops(*history), "withdrawal")
    assert ("cdd" in kinds(flags)) == (sum(history) + amount >= 200_000)


# --- discovery -----------------------------------------------------------------------------------

def view(eid: str, jur: str, viewers: int = 0, cap: int = 100, healthy: bool = True, hb: int | None = 1000) -> EdgeView:
    return EdgeView(eid, jur, f"https://{eid}", healthy, hb, viewers, cap)


def test_discovery_never_abroad_and_least_loaded_first() -> None:
    edges = [view("mt-1", "MT", 80), view("mt-2", "MT", 10), view("de-1", "DE", 0), view("mt-3", "MT", 1, healthy=False),
             view("mt-4", "MT", 0, hb=1000 - 60_000)]
    any_local, alive = candidates(edges, "MT", now_ms=1000, timeout_ms=10_000)
    assert any_local and [e.edge_id for e in alive] == ["mt-2", "mt-1"]
    assert candidates(edges, "US", 1000, 10_000) == (False, [])


@given(st.lists(st.tuples(st.sampled_from(["MT", "DE", "NJ"]), st.integers(0, 500), st.integers(0, 500),
                          st.booleans()), max_size=12), st.sampled_from(["MT", "DE", "NJ", "GR"]))
def test_discovery_property(rows: list[tuple[str, int, int, bool]], jur: str) -> None:
    edges = [view(f"e{i}", j, v, c, h) for i, (j, v, c, h) in enumerate(rows)]
    _, alive = candidates(edges, jur, 1000, 10_000)
    assert all(e.jurisdiction == jur and e.healthy for e in alive)
    loads = [e.load for e in alive]
    assert loads == sorted(loads)
