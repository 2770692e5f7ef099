"""The payment service provider port: confirm a deposit, refund it; both idempotent by deposit id."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True)
class Charge:
    deposit_id: str
    psp_ref: str
    status: Literal["confirmed", "declined"]
    reason: str = ""


class PaymentProvider(Protocol):
    def confirm(self, deposit_id: str, amount: int, currency: str, method: str) -> Charge: ...
    def refund(self, deposit_id: str) -> str: ...
    def count_refunds(self, deposit_id: str | None = None) -> int: ...
