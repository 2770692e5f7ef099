"""The withdrawal state machine (pure).

    requested -> approved | review | refused        the cloud's decision (KYC, then AML)
    review    -> approved | refused                 an operator's decision
    approved  -> paying -> paid | refused           the payout (refused: the rail failed)
    *         -> settled                            the edge journaled WithdrawalPaid
    * but paid -> released                          the edge journaled WithdrawalReleased

The last two are the edge's facts about the player's balance: they are recorded whatever the cloud
last thought, except that a withdrawal paid by the rail is never shown as released (the edge
settles it once the PayoutResult arrives).
Every cloud-side move is a compare-and-set on the current status in SQL, so two processors never
both move the same withdrawal; `transition` is the rule those updates obey.
"""
from __future__ import annotations

from typing import Literal, get_args

WithdrawalStatus = Literal["requested", "review", "approved", "refused", "paying", "paid", "settled", "released"]
STATUSES: tuple[WithdrawalStatus, ...] = get_args(WithdrawalStatus)

TRANSITIONS: dict[WithdrawalStatus, frozenset[WithdrawalStatus]] = {
    "requested": frozenset({"approved", "review", "refused"}),
    "review": frozenset({"approved", "refused"}),
    "approved": frozenset({"paying"}),
    "paying": frozenset({"paid", "refused"}),
    "paid": frozenset(),
    "refused": frozenset(),
    "settled": frozenset(),
    "released": frozenset(),
}

NEW: WithdrawalStatus = "requested"  # what the edge journaled: awaiting the cloud's KYC/AML decision
IN_REVIEW: WithdrawalStatus = "review"
PAYABLE: tuple[WithdrawalStatus, ...] = ("approved", "paying")  # the payout loop's work
# Statuses whose amount is not a past operation for AML linking (never left, or sent back).
NOT_AN_OPERATION: tuple[WithdrawalStatus, ...] = ("refused", "released", "requested")
# The edge's WithdrawalReleased is not recorded over these.
RELEASE_BLOCKED: tuple[WithdrawalStatus, ...] = ("paid",)

Action = Literal["approve", "review", "refuse"]
AFTER_DECISION: dict[Action, WithdrawalStatus] = {"approve": "approved", "review": "review", "refuse": "refused"}


class IllegalWithdrawalTransition(ValueError):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"a withdrawal cannot go from {current} to {target}")
        self.current, self.target = current, target


def transition(current: WithdrawalStatus, target: WithdrawalStatus) -> WithdrawalStatus:
    if target not in TRANSITIONS.get(current, frozenset()):
        raise IllegalWithdrawalTransition(current, target)
    return target


def after_payout(rail_status: Literal["paid", "failed"]) -> WithdrawalStatus:
    return "paid" if rail_status == "paid" else "refused"
