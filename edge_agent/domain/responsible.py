"""Responsible gambling, enforced at bet and deposit time (UKGC RTS 12/13, AGCO 2.13/2.14).

- Deposit and loss limits per 24 h / 7 days / 1 month (30 days); every window is checked, so
  the lowest overlapping limit applies. A decrease applies at once; an increase (or removal)
  only after a 24 h cooling-off.
- Breaks (1 day, 1 week, 1-3 months) and self-exclusion (6 months, 1 year, 5 years); neither
  can be lifted early: a new one can only extend.
- Session clock, net position since session start, reality checks at a chosen interval.

Pure: the caller passes `now` (Unix ms). Decisions (like an increase's effective time) are
recorded in journal entries so that replaying the journal reproduces them exactly.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from contract.bounds import MAX_MONEY
from edge_agent.domain import errors as E

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
COOLING_OFF = DAY
WINDOWS: dict[str, int] = {"24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY}
LIMIT_KINDS = ("deposit", "loss")
BREAKS: dict[str, int] = {"1d": DAY, "1w": 7 * DAY, "1m": 30 * DAY, "2m": 60 * DAY, "3m": 90 * DAY}
EXCLUSIONS: dict[str, int] = {"6m": 182 * DAY, "1y": 365 * DAY, "5y": 1826 * DAY}


@dataclass
class Limit:
    current: int | None = None
    pending: int | None = None
    pending_ts: int | None = None  # when `pending` takes over
    pending_set: bool = False       # a pending change exists (pending may be None = removal)

    def effective(self, now: int) -> int | None:
        if self.pending_set and self.pending_ts is not None and now >= self.pending_ts:
            return self.pending
        return self.current

    def view(self, now: int) -> dict[str, int | None]:
        out: dict[str, int | None] = {"amount": self.effective(now)}
        if self.pending_set and self.pending_ts is not None and now < self.pending_ts:
            out["pending_amount"] = self.pending
            out["pending_effective_ts"] = self.pending_ts
        return out


def limit_change_effective_ts(limit: Limit, new_amount: int | None, now: int) -> int:
    """When a requested limit takes effect: at once if it tightens, after 24 h if it loosens."""
    cur = limit.effective(now)
    tightens = new_amount is not None and (cur is None or new_amount <= cur)
    return now if tightens else now + COOLING_OFF


def apply_limit_change(limit: Limit, new_amount: int | None, effective_ts: int, now: int) -> None:
    # Settle a matured pending change first so the new one compares against the real value.
    limit.current = limit.effective(now)
    if effective_ts <= now:
        limit.current = new_amount
        limit.pending, limit.pending_ts, limit.pending_set = None, None, False
    else:
        limit.pending, limit.pending_ts, limit.pending_set = new_amount, effective_ts, True


class Windowed:
    """Amounts over time, summed over the RG windows (bucketed per hour to bound the work)."""

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()  # [hour_start_ms, sum]

    def add(self, ts: int, amount: int) -> None:
        hour = ts - ts % HOUR
        if self.buckets and self.buckets[-1][0] == hour:
            self.buckets[-1][1] += amount
        else:
            self.buckets.append([hour, amount])
        horizon = ts - WINDOWS["30d"] - HOUR
        while self.buckets and self.buckets[0][0] < horizon:
            self.buckets.popleft()

    def total_since(self, since: int) -> int:
        # The hour bucket containing `since` counts whole: errs on the side of the player.
        return sum(v for h, v in self.buckets if h + HOUR > since)


@dataclass(frozen=True)
class Defaults:
    """The jurisdiction's starting point for a player who chose nothing (edge config
    `responsible_gambling`): deposit limits per window and a reality-check interval."""

    deposit_limits: dict[str, int] = field(default_factory=dict)  # window ("24h", "7d", "30d") -> minor units
    reality_check_min: int | None = None

    def new_player(self) -> PlayerRG:
        p = PlayerRG(reality_check_min=self.reality_check_min)
        for period, amount in self.deposit_limits.items():
            p.limits[("deposit", period)] = Limit(current=amount)
        return p


@dataclass
class PlayerRG:
    limits: dict[tuple[str, str], Limit] = field(default_factory=dict)
    deposits: Windowed = field(default_factory=Windowed)
    losses: Windowed = field(default_factory=Windowed)  # settled stake - payout (negative = win)
    excluded_until: int = 0
    break_until: int = 0
    session_id: str | None = None
    session_start: int | None = None
    session_net: int = 0        # payouts - stakes settled since session start
    session_staked: int = 0
    reality_check_min: int | None = None

    def limit(self, kind: str, period: str) -> Limit:
        return self.limits.setdefault((kind, period), Limit())

    def has_limits(self, kind: str) -> bool:
        return any(k == kind for k, _ in self.limits)


def check_can_play(rg: PlayerRG, now: int) -> None:
    if rg.excluded_until > now:
        raise E.DomainError(E.PLAYER_EXCLUDED, "player is self-excluded", 403, until_ts=rg.excluded_until)
    if rg.break_until > now:
        raise E.DomainError(E.PLAYER_ON_BREAK, "player is taking a break", 403, until_ts=rg.break_until)


def check_bet(rg: PlayerRG, stake: int, in_play: int, now: int) -> None:
    """Refuse a stake that could take the player's loss over any loss limit."""
    check_can_play(rg, now)
    if not rg.has_limits("loss"):
        return
    for period, span in WINDOWS.items():
        lim = rg.limits.get(("loss", period))
        amount = lim.effective(now) if lim else None
        if amount is None:
            continue
        worst = rg.losses.total_since(now - span) + in_play + stake
        if worst > amount:
            raise E.DomainError(
                E.LOSS_LIMIT, f"stake would exceed the {period} loss limit", 422,
                period=period, limit=amount, headroom=max(0, amount - rg.losses.total_since(now - span) - in_play),
            )


def check_deposit(rg: PlayerRG, amount: int, now: int) -> None:
    check_can_play(rg, now)
    for period, span in WINDOWS.items():
        lim = rg.limits.get(("deposit", period))
        cap = lim.effective(now) if lim else None
        if cap is not None and rg.deposits.total_since(now - span) + amount > cap:
            raise E.DomainError(
                E.DEPOSIT_LIMIT, f"deposit would exceed the {period} deposit limit", 422,
                period=period, limit=cap,
            )


def validate_limit_request(kind: str, period: str, amount: object) -> None:
    if kind not in LIMIT_KINDS:
        raise E.DomainError(E.INVALID_LIMIT, f"limit kind must be one of {LIMIT_KINDS}")
    if period not in WINDOWS:
        raise E.DomainError(E.INVALID_LIMIT, f"period must be one of {tuple(WINDOWS)}")
    if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool)
                               or not 0 < amount <= MAX_MONEY):
        raise E.DomainError(E.INVALID_AMOUNT, f"a limit is a positive integer of minor units up to {MAX_MONEY}, "
                            "or null to remove it")


def reality_checks_due(rg: PlayerRG, now: int, already_sent: int) -> int:
    """How many reality-check reminders are due since session start (caller tracks those sent)."""
    if rg.session_start is None or not rg.reality_check_min:
        return 0
    return max(0, (now - rg.session_start) // (rg.reality_check_min * MINUTE) - already_sent)
