"""KYC state machine: unverified -> pending -> verified | rejected | edd_required -> suspended."""
from __future__ import annotations

from typing import Literal

KycStatus = Literal["unverified", "pending", "verified", "rejected", "edd_required", "suspended"]
STATUSES: tuple[str, ...] = ("unverified", "pending", "verified", "rejected", "edd_required", "suspended")

# Why these edges: a rejected player may submit again; enhanced due diligence ends in a decision
# (or a fresh check); a verified player can be escalated to EDD or suspended; suspension is final
# for the automated flow (lifting it is a compliance decision outside this machine).
TRANSITIONS: dict[str, frozenset[str]] = {
    "unverified": frozenset({"pending"}),
    "pending": frozenset({"verified", "rejected", "edd_required"}),
    "rejected": frozenset({"pending"}),
    "edd_required": frozenset({"pending", "verified", "rejected", "suspended"}),
    "verified": frozenset({"edd_required", "suspended"}),
    "suspended": frozenset(),
}


class IllegalTransition(ValueError):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"KYC cannot go from {current} to {target}")
        self.current, self.target = current, target


def transition(current: str, target: str) -> str:
    if target not in STATUSES or target not in TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition(current, target)
    return target


def can_withdraw(status: str) -> bool:
    return status == "verified"
