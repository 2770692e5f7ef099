"""The payout rail port; every payout is idempotent by withdrawal id."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class Payout:
    withdrawal_id: str
    rail: str
    rail_ref: str
    amount: int
    currency: str
    status: Literal["pending", "paid", "failed"]
    confirmations: int = 0


class PayoutRail(Protocol):
    name: str

    def payout(self, withdrawal_id: str, player: str, amount: int, currency: str) -> Payout:
        """Pay once per withdrawal id: asked again for the same id, return the same payout."""
        ...

    def status(self, withdrawal_id: str) -> Payout | None:
        ...

    def count_payouts(self, withdrawal_id: str | None = None) -> int:
        """How many distinct payments the rail has made (for audits and tests)."""
        ...
