"""Token issuance: who may mint what (contract.tokens.mint_refusal), lifetimes capped by role,
and the bootstrap secret, which mints only until the first operator (or admin) token exists."""
from __future__ import annotations

import contextlib
import threading
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, func, insert, select, text

from contract import tokens
from control_plane.adapters.db.models import token_grants

PLATFORM_ROLES = ("operator", "admin")  # grants recorded; the first one closes the bootstrap secret
# Serialises bootstrap mints: a transaction-scoped advisory lock across replicas on PostgreSQL
# (the key is arbitrary but fixed), a process lock on embedded SQLite (one process only).
BOOTSTRAP_LOCK_KEY = 0x626F6F74  # "boot"
_bootstrap_local = threading.Lock()


class MintRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class TokenIssuer:
    def __init__(self, engine: Engine, signing_key: Ed25519PrivateKey, default_ttl_s: int) -> None:
        self.engine = engine
        self.signing_key = signing_key
        self.default_ttl_s = default_ttl_s

    def bootstrap_open(self) -> bool:
        with self.engine.connect() as c:
            n = c.execute(select(func.count()).select_from(token_grants)
                          .where(token_grants.c.role.in_(PLATFORM_ROLES))).scalar_one()
        return n == 0

    def mint(self, issuer: tokens.Principal | None, sub: str, role: str, jurisdiction: str,
             ttl_s: int | None) -> tuple[str, int]:
        """(token, lifetime). `issuer` None is the bootstrap secret (already checked by the caller)."""
        cap = tokens.MAX_TTL_S.get(role)
        if cap is None:
            raise MintRefused(422, "invalid_request", f"unknown role {role!r}")
        ttl = ttl_s if ttl_s is not None else min(self.default_ttl_s, cap)
        if ttl > cap:
            raise MintRefused(422, "ttl_too_long", f"a {role} token lives at most {cap} s")
        refusal = tokens.mint_refusal(issuer, role, jurisdiction)
        if refusal is not None:
            raise MintRefused(403, "forbidden", refusal)
        now = int(time.time())
        with _bootstrap_local if issuer is None else contextlib.nullcontext(), self.engine.begin() as c:
            if issuer is None and c.dialect.name == "postgresql":
                # Two bootstrap mints at once must not both see "no operator yet".
                c.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": BOOTSTRAP_LOCK_KEY})
            if issuer is None and c.execute(select(func.count()).select_from(token_grants)
                                            .where(token_grants.c.role.in_(PLATFORM_ROLES))).scalar_one():
                raise MintRefused(403, "bootstrap_closed",
                                  "the bootstrap secret mints only until the first operator exists")
            if role in PLATFORM_ROLES:
                c.execute(insert(token_grants).values(
                    sub=sub, role=role, jurisdiction=jurisdiction,
                    issuer="bootstrap" if issuer is None else f"{issuer.role}:{issuer.sub}"[:160],
                    issued_ts=now * 1000, expires_ts=(now + ttl) * 1000))
        return tokens.issue(self.signing_key, sub, role, jurisdiction, ttl), ttl  # type: ignore[arg-type]

