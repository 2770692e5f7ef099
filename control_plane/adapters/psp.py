"""A simulated payment service provider (port: control_plane/ports/psp.py)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from control_plane.adapters.simstore import SimStore
from control_plane.ports.psp import Charge


class SimulatedPsp:
    def __init__(self, state_path: Path | None = None, decline_methods: list[str] | None = None) -> None:
        self._store = SimStore(state_path)
        self.decline_methods = set(decline_methods or [])

    def confirm(self, deposit_id: str, amount: int, currency: str, method: str) -> Charge:
        ok = method not in self.decline_methods
        rec = self._store.put_if_absent(f"charge:{deposit_id}", {
            "psp_ref": "PSP-" + hashlib.sha256(deposit_id.encode()).hexdigest()[:12],
            "amount": amount, "currency": currency,
            "status": "confirmed" if ok else "declined", "reason": "" if ok else "card_declined"})
        return Charge(deposit_id, rec["psp_ref"], rec["status"], rec["reason"])

    def refund(self, deposit_id: str) -> str:
        rec = self._store.put_if_absent(f"refund:{deposit_id}", {
            "refund_ref": "RF-" + hashlib.sha256(deposit_id.encode()).hexdigest()[:12]})
        return str(rec["refund_ref"])

    def count_refunds(self, deposit_id: str | None = None) -> int:
        return len(self._store.items(f"refund:{deposit_id}" if deposit_id else "refund:"))

    def close(self) -> None:
        self._store.close()
