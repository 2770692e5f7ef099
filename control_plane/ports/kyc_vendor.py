"""The KYC vendor port: a check is started by `submit`, its decision arrives later as a webhook
signed with HMAC-SHA256 over the body (`sign`), which the HTTP callback verifies."""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

Deliver = Callable[[bytes, str], Awaitable[None]]  # (body, signature header)


@dataclass(frozen=True)
class VendorDecision:
    vendor_ref: str
    jurisdiction: str
    player: str
    status: str


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class KycVendor(Protocol):
    async def submit(self, jurisdiction: str, player: str, reference: str) -> str:
        """Start a check; returns the vendor's reference. The decision arrives via callback."""
        ...

    async def close(self) -> None: ...
