"""Bearer tokens: Ed25519-signed JWTs (EdDSA) issued by the control plane, verified offline.

Claims: `sub` (player, operator or regulator id), `role`, `jur` (jurisdiction), `exp`.
Edges hold only the public key, so a token verifies with no call to the cloud.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

Role = Literal["player", "operator", "regulator", "edge"]
ISSUER = "casino-control-plane"


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
    now = int(time.time())
    claims = {"sub": sub, "role": role, "jur": jurisdiction, "iat": now, "exp": now + ttl_s, "iss": ISSUER}
    return jwt.encode(claims, key, algorithm="EdDSA")


class TokenError(Exception):
    pass


def verify(public_key_pem: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token, public_key_pem, algorithms=["EdDSA"], issuer=ISSUER,
            options={"require": ["sub", "exp", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from exc
    role = claims.get("role")
    if role not in ("player", "operator", "regulator", "edge"):
        raise TokenError("unknown role")
    return Principal(sub=str(claims["sub"]), role=role, jurisdiction=str(claims.get("jur", "")), exp=int(claims["exp"]))
