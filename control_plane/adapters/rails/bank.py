"""Simulated bank transfer rail: settles on request, idempotent by withdrawal id (end-to-end id)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from control_plane.adapters.simstore import SimStore
from control_plane.ports.payout_rail import Payout


class SimulatedBankRail:
    name = "bank"

    def __init__(self, state_path: Path | None = None) -> None:
        self._store = SimStore(state_path)

    def payout(self, withdrawal_id: str, player: str, amount: int, currency: str) -> Payout:
        ref = "SEPA-" + hashlib.sha256(withdrawal_id.encode()).hexdigest()[:16].upper()
        rec = self._store.put_if_absent(f"payout:{withdrawal_id}", {
            "rail_ref": ref, "player": player, "amount": amount, "currency": currency})
        return Payout(withdrawal_id, self.name, rec["rail_ref"], rec["amount"], rec["currency"], "paid")

    def status(self, withdrawal_id: str) -> Payout | None:
        rec = self._store.get(f"payout:{withdrawal_id}")
        if rec is None:
            return None
        return Payout(withdrawal_id, self.name, rec["rail_ref"], rec["amount"], rec["currency"], "paid")

    def count_payouts(self, withdrawal_id: str | None = None) -> int:
        return len(self._store.items(f"payout:{withdrawal_id}" if withdrawal_id else "payout:"))

    def close(self) -> None:
        self._store.close()
