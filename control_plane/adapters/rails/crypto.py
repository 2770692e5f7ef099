"""Simulated crypto rail: one transaction per withdrawal id, paid after N confirmations.

Confirmations grow with time since broadcast (one block per `block_interval_s`).
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

from control_plane.adapters.simstore import SimStore
from control_plane.ports.payout_rail import Payout


class SimulatedCryptoRail:
    name = "crypto"

    def __init__(self, state_path: Path | None = None, confirmations: int = 3,
                 block_interval_s: float = 2.0) -> None:
        self._store = SimStore(state_path)
        self.required = confirmations
        self.block_interval_s = block_interval_s

    def payout(self, withdrawal_id: str, player: str, amount: int, currency: str) -> Payout:
        txid = hashlib.sha256(b"tx:" + withdrawal_id.encode()).hexdigest()
        self._store.put_if_absent(f"payout:{withdrawal_id}", {
            "rail_ref": txid, "player": player, "amount": amount, "currency": currency,
            "broadcast_at": time.time()})
        st = self.status(withdrawal_id)
        assert st is not None
        return st

    def status(self, withdrawal_id: str) -> Payout | None:
        rec = self._store.get(f"payout:{withdrawal_id}")
        if rec is None:
            return None
        confs = int((time.time() - rec["broadcast_at"]) / self.block_interval_s)
        state = "paid" if confs >= self.required else "pending"
        return Payout(withdrawal_id, self.name, rec["rail_ref"], rec["amount"], rec["currency"], state,
                      min(confs, self.required))

    def count_payouts(self, withdrawal_id: str | None = None) -> int:
        return len(self._store.items(f"payout:{withdrawal_id}" if withdrawal_id else "payout:"))

    def close(self) -> None:
        self._store.close()
