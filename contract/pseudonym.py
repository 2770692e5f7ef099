"""Pseudonymous player ids (CONTRACT section 6): what leaves a jurisdiction names a player only so."""
from __future__ import annotations

import hashlib
import hmac


def pseudonym(residency_key: bytes, player_id: str) -> str:
    return hmac.new(residency_key, player_id.encode("utf-8"), hashlib.sha256).hexdigest()
