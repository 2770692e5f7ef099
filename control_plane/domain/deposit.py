"""The deposit state machine (pure).

    requested -> confirmed (PSP charged; DepositCredit sent) | failed (PSP declined; DepositDeclined sent)
    requested | confirmed -> credited   the edge journaled DepositCredited
    requested | confirmed -> refused    the edge journaled DepositRefused (e.g. a limit): refund it
    refused   -> refunded               the PSP refunded the charge
"""
from __future__ import annotations

from typing import Literal, get_args

DepositStatus = Literal["requested", "confirmed", "failed", "credited", "refused", "refunded"]
STATUSES: tuple[DepositStatus, ...] = get_args(DepositStatus)

TRANSITIONS: dict[DepositStatus, frozenset[DepositStatus]] = {
    "requested": frozenset({"confirmed", "failed", "credited", "refused"}),
    "confirmed": frozenset({"credited", "refused"}),
    "refused": frozenset({"refunded"}),
    "failed": frozenset(),
    "credited": frozenset(),
    "refunded": frozenset(),
}

NEW: DepositStatus = "requested"  # what the edge journaled, nothing decided yet
OPEN_AT_EDGE: tuple[DepositStatus, ...] = ("requested", "confirmed")  # the edge may still credit or refuse it
PSP_WORK: tuple[DepositStatus, ...] = ("requested", "refused")  # to charge, to refund
AN_OPERATION: tuple[DepositStatus, ...] = ("confirmed", "credited")  # counts as a past operation for AML


class IllegalDepositTransition(ValueError):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"a deposit cannot go from {current} to {target}")
        self.current, self.target = current, target


def transition(current: DepositStatus, target: DepositStatus) -> DepositStatus:
    if target not in TRANSITIONS.get(current, frozenset()):
        raise IllegalDepositTransition(current, target)
    return target
