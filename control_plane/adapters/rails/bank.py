"""Simulated bank transfer rail: settles on request, idempotent by withdrawal id (end-to-end id)."""
from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

from control_plane.adapters.simstore import SimStore
from control_plane.ports.payout_rail import Payout


class SimulatedBankRail:
    name = "bank"

    def __init__(self, state_path: Path | None = None, answer_delay_s: float = 0.0) -> None:
        self._store = SimStore(state_path)
        self.answer_delay_s = answer_delay_s

    def payout(self, withdrawal_id: str, player: str, amount: int, currency: str) -> Payout:
        ref = "SEPA-" + hashlib.sha256(withdrawal_id.encode()).hexdigest()[:16].upper()
        asked = time.time()
        rec = self._store.put_if_absent(f"payout:{withdrawal_id}", {
            "rail_ref": ref, "player": player, "amount": amount, "currency": currency})
        if self.answer_delay_s:
            time.sleep(self.answer_delay_s)  # booked; the answer is slow (a replica may die here)
        # the bank's request log: when each request for this payout was open (tests check that no
        # two were open at once, i.e. that two replicas never worked on one withdrawal together)
        self._store.put(f"request:{withdrawal_id}:{uuid.uuid4().hex}", {"start": asked, "end": time.time()})
        return Payout(withdrawal_id, self.name, rec["rail_ref"], rec["amount"], rec["currency"], "paid")

    def requests(self, withdrawal_id: str) -> list[tuple[float, float]]:
        """(start, end) of every answered payout request for the withdrawal."""
        return sorted((v["start"], v["end"]) for _, v in self._store.items(f"request:{withdrawal_id}:"))

    def status(self, withdrawal_id: str) -> Payout | None:
        rec = self._store.get(f"payout:{withdrawal_id}")
        if rec is None:
            return None
        return Payout(withdrawal_id, self.name, rec["rail_ref"], rec["amount"], rec["currency"], "paid")

    def count_payouts(self, withdrawal_id: str | None = None) -> int:
        return len(self._store.items(f"payout:{withdrawal_id}" if withdrawal_id else "payout:"))

    def close(self) -> None:
        self._store.close()
