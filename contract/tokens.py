"""Bearer tokens: Ed25519-signed JWTs (EdDSA) issued by the control plane, verified offline.

Claims: `sub` (player, operator or regulator id), `role`, `jur` (jurisdiction), `iat`, `exp`.
Edges hold only the public key, so a token verifies with no call to the cloud. A token lives
at most its role's MAX_TTL_S: one that claims longer is refused even when the signature holds.

Who may mint what (the control plane's `POST /v1/tokens` asks `mint_refusal`):

| issuer                      | may mint                                                        |
| --------------------------- | --------------------------------------------------------------- |
| bootstrap secret            | anything, until the first operator token exists                 |
| `admin` (`*`)               | operator (a jurisdiction or `*`), regulator, edge, accounts      |
| `operator` of J             | operator, edge, accounts of J (`*` operators: of any one J)      |
| `accounts` of J             | player of J (the operator's account system, a service identity) |
| player, regulator, edge     | nothing                                                         |

Never `*` for anything but admin and operator, never a role above the issuer's own.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

Role = Literal["player", "operator", "regulator", "edge", "accounts", "admin"]
ROLES: tuple[Role, ...] = ("player", "operator", "regulator", "edge", "accounts", "admin")
ISSUER = "casino-control-plane"
ANY_JURISDICTION = "*"
HOUR, DAY = 3600, 86400
# The longest a token of each role may live; edges refuse tokens claiming more.
MAX_TTL_S: dict[str, int] = {"player": DAY, "operator": DAY, "regulator": 7 * DAY, "admin": DAY,
                             "edge": 30 * DAY, "accounts": 30 * DAY}
CLOCK_SKEW_S = 300


@dataclass(frozen=True)
class Principal:
    sub: str
    role: Role
    jurisdiction: str
    exp: int


def new_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_private(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def issue(key: Ed25519PrivateKey | str, sub: str, role: Role, jurisdiction: str, ttl_s: int = 3600) -> str:
    if isinstance(key, str):
        key = load_private(key)
    if ttl_s > MAX_TTL_S[role]:
        raise ValueError(f"a {role} token lives at most {MAX_TTL_S[role]} s")
    now = int(time.time())
    claims = {"sub": sub, "role": role, "jur": jurisdiction, "iat": now, "exp": now + ttl_s, "iss": ISSUER}
    return jwt.encode(claims, key, algorithm="EdDSA")


class TokenError(Exception):
    pass


def verify(public_key_pem: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token, public_key_pem, algorithms=["EdDSA"], issuer=ISSUER,
            options={"require": ["sub", "exp", "iat", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from exc
    role, exp, iat = claims.get("role"), claims["exp"], claims["iat"]
    if role not in ROLES:
        raise TokenError("unknown role")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (exp, iat)):
        raise TokenError("exp and iat must be integers")
    if exp - iat > MAX_TTL_S[role] or exp > time.time() + MAX_TTL_S[role] + CLOCK_SKEW_S:
        raise TokenError(f"token lifetime over the {MAX_TTL_S[role]} s allowed for {role}")
    return Principal(sub=str(claims["sub"]), role=role, jurisdiction=str(claims.get("jur", "")), exp=exp)


def mint_refusal(issuer: Principal | None, role: str, jurisdiction: str) -> str | None:
    """Why `issuer` may not mint a `role` token for `jurisdiction`, or None when it may.

    `issuer` None is the bootstrap secret (the caller checks it is still open)."""
    if role not in ROLES:
        return f"unknown role {role!r}"
    if jurisdiction == ANY_JURISDICTION and role not in ("operator", "admin"):
        return f"a {role} token names one jurisdiction, never *"
    if role == "admin" and jurisdiction != ANY_JURISDICTION:
        return "an admin token is for *"
    if issuer is None:
        return None
    if issuer.role == "admin":
        return None if role in ("operator", "regulator", "edge", "accounts") else f"admin does not mint {role} tokens"
    if issuer.role == "operator":
        if role not in ("operator", "edge", "accounts"):
            return f"an operator does not mint {role} tokens"
        if jurisdiction == ANY_JURISDICTION:
            return "an operator never mints for *"
        if issuer.jurisdiction not in (jurisdiction, ANY_JURISDICTION):
            return f"an operator of {issuer.jurisdiction} mints only within {issuer.jurisdiction}"
        return None
    if issuer.role == "accounts":
        if role != "player":
            return "the account system mints player tokens only"
        if issuer.jurisdiction != jurisdiction:
            return f"the account system of {issuer.jurisdiction} mints only players of {issuer.jurisdiction}"
        return None
    return f"a {issuer.role} token mints nothing"
