"""AML rules for withdrawals and deposits (pure).

- CDD: linked operations (same player, within `cdd_window_s`) reaching EUR 2,000 (AMLD4 art. 11(d)).
- CTR: cash in + out above USD 10,000 in one gaming day, aggregated (31 CFR 1021.311/313): a report
  flag; the payout itself is not held for it.
- Structuring: several amounts just under a threshold within a window (31 CFR 1021.320 territory):
  the withdrawal goes to a manual review queue.
Amounts are integer minor units and compared only within the threshold's own currency.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from control_plane.config import AmlConfig
from control_plane.domain.kyc import can_withdraw


@dataclass(frozen=True)
class Operation:
    """A past cash operation of the same player (deposit or withdrawal), in minor units."""

    ts_ms: int
    amount: int
    currency: str
    kind: Literal["deposit", "withdrawal"]


@dataclass(frozen=True)
class Flag:
    kind: Literal["cdd", "ctr", "structuring"]
    detail: str


@dataclass
class Decision:
    action: Literal["approve", "review", "refuse"]
    reason: str = ""
    flags: list[Flag] = field(default_factory=list)


def gaming_day(ts_ms: int, start_hour_utc: int) -> int:
    """Gaming-day number: days since epoch, the day starting at `start_hour_utc`."""
    return (ts_ms // 1000 - start_hour_utc * 3600) // 86_400


def just_under(amount: int, threshold: int, margin_pct: int) -> bool:
    return threshold * (100 - margin_pct) <= amount * 100 and amount < threshold


def flags_for(cfg: AmlConfig, now_ms: int, amount: int, currency: str, history: Iterable[Operation],
              kind: Literal["deposit", "withdrawal"]) -> list[Flag]:
    past = [o for o in history if o.currency == currency]
    flags: list[Flag] = []
    cdd = cfg.cdd_threshold.get(currency)
    if cdd is not None:
        linked = amount + sum(o.amount for o in past if now_ms - o.ts_ms <= cfg.cdd_window_s * 1000)
        if linked >= cdd:
            flags.append(Flag("cdd", f"linked {kind}s reach {linked} {currency} minor units (>= {cdd})"))
    ctr = cfg.ctr_threshold.get(currency)
    if ctr is not None:
        day = gaming_day(now_ms, cfg.gaming_day_start_hour_utc)
        total = amount + sum(o.amount for o in past
                             if gaming_day(o.ts_ms, cfg.gaming_day_start_hour_utc) == day)
        if total > ctr:
            flags.append(Flag("ctr", f"gaming day {day}: {total} {currency} minor units (> {ctr})"))
    thresholds = [t for t in (cdd, ctr, cfg.sar_threshold.get(currency)) if t is not None]
    for t in thresholds:
        if not just_under(amount, t, cfg.structuring_margin_pct):
            continue
        recent = [o for o in past if now_ms - o.ts_ms <= cfg.structuring_window_s * 1000
                  and just_under(o.amount, t, cfg.structuring_margin_pct)]
        if len(recent) + 1 >= cfg.structuring_count:
            flags.append(Flag("structuring",
                              f"{len(recent) + 1} amounts just under {t} {currency} within the window"))
            break
    return flags


def decide_withdrawal(cfg: AmlConfig, *, kyc_status: str, now_ms: int, amount: int, currency: str,
                      history: Iterable[Operation]) -> Decision:
    """KYC first (no payout to an unverified player), then AML flags; structuring holds for review."""
    if not can_withdraw(kyc_status):
        return Decision("refuse", f"kyc_{kyc_status}")
    flags = flags_for(cfg, now_ms, amount, currency, history, "withdrawal")
    if any(f.kind == "structuring" for f in flags):
        return Decision("review", "structuring", flags)
    return Decision("approve", "", flags)
