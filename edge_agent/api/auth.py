"""Bearer tokens verified offline with the control plane's public key (Ed25519 JWT)."""
from __future__ import annotations

import time
from collections import OrderedDict

from contract import tokens
from edge_agent.domain.errors import DomainError

CACHE_SIZE = 50_000


class Authenticator:
    """Verifies tokens and caches the result until expiry: a signature check costs ~100 µs,
    too much to pay on every bet."""

    def __init__(self, public_key_pem: str | None, jurisdiction: str) -> None:
        self.public_key_pem = public_key_pem
        self.jurisdiction = jurisdiction
        self._cache: OrderedDict[str, tokens.Principal] = OrderedDict()

    def principal(self, token: str | None) -> tokens.Principal:
        if not token:
            raise DomainError("unauthorized", "missing bearer token", 401)
        p = self._cache.get(token)
        now = time.time()
        if p is None or p.exp <= now:
            if self.public_key_pem is None:
                raise DomainError("unauthorized", "this edge has no token key configured", 401)
            try:
                p = tokens.verify(self.public_key_pem, token)
            except tokens.TokenError as exc:
                raise DomainError("unauthorized", f"invalid token: {exc}", 401) from exc
            self._cache[token] = p
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return p

    def player(self, token: str | None) -> tokens.Principal:
        p = self.principal(token)
        if p.role != "player":
            raise DomainError("forbidden", "a player token is required", 403)
        if p.jurisdiction != self.jurisdiction:
            # Residency: a player is served only by an edge of their own jurisdiction.
            raise DomainError("wrong_jurisdiction", f"this edge serves jurisdiction {self.jurisdiction}", 403,
                              jurisdiction=self.jurisdiction)
        return p

    def operator(self, token: str | None) -> tokens.Principal:
        p = self.principal(token)
        if p.role != "operator" or p.jurisdiction not in (self.jurisdiction, "*"):
            raise DomainError("forbidden", "an operator token for this jurisdiction is required", 403)
        return p


def bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None
