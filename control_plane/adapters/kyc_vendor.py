"""A simulated KYC vendor that decides asynchronously and calls back (port: control_plane/ports/kyc_vendor.py).

The simulated decision follows the reference (a test hook): containing "reject" -> rejected,
"edd" -> edd_required, otherwise verified.
"""
from __future__ import annotations

import asyncio
import hashlib
import json

from control_plane.ports.kyc_vendor import Deliver, sign


class SimulatedKycVendor:
    def __init__(self, deliver: Deliver, secret: str, delay_s: float) -> None:
        self._deliver, self._secret, self.delay_s = deliver, secret, delay_s
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, jurisdiction: str, player: str, reference: str) -> str:
        vendor_ref = "KYC-" + hashlib.sha256(f"{jurisdiction}:{player}:{reference}".encode()).hexdigest()[:16]
        status = "rejected" if "reject" in reference else "edd_required" if "edd" in reference else "verified"
        body = json.dumps({"vendor_ref": vendor_ref, "jurisdiction": jurisdiction, "player": player,
                           "status": status}).encode()
        task = asyncio.create_task(self._later(body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return vendor_ref

    async def _later(self, body: bytes) -> None:
        await asyncio.sleep(self.delay_s)
        for attempt in range(5):  # webhooks are retried by vendors; the callback is idempotent
            try:
                await self._deliver(body, sign(self._secret, body))
                return
            except Exception:  # noqa: BLE001 - any delivery failure is retried
                await asyncio.sleep(0.2 * (attempt + 1))

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
