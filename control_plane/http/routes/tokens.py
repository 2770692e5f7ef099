"""Token issuance and the public key that verifies tokens."""
from __future__ import annotations

import hmac
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from contract import tokens
from control_plane.http.auth import principal
from control_plane.http.deps import services
from control_plane.http.errors import ApiError, errors
from control_plane.services.tokens import MintRefused

router = APIRouter()


class TokenRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    sub: str = Field(min_length=1, max_length=128)
    role: Literal["player", "operator", "regulator", "edge", "accounts", "admin"]
    jurisdiction: str = Field(min_length=1, max_length=16, description="a jurisdiction code, or * (operator, admin)")
    ttl_s: int | None = Field(None, gt=0, le=max(tokens.MAX_TTL_S.values()),
                              description="capped by role: " + ", ".join(f"{r} {s} s" for r, s in
                                                                       tokens.MAX_TTL_S.items()))


@router.get("/v1/keys/token", response_model=None)
def token_key(request: Request, format: str = "json") -> dict[str, Any] | Response:
    pem = services(request).public_pem
    if format == "pem":
        return Response(pem, media_type="application/x-pem-file")
    return {"alg": "EdDSA", "public_key_pem": pem, "issuer": tokens.ISSUER}


@router.post("/v1/tokens", responses=errors(401, 403, 415, 422), summary=(
    "Mint a token. The bootstrap secret (X-Bootstrap-Secret) works until the first operator exists; "
    "then an admin mints operators, regulators, edges and account systems; an operator of J mints "
    "operators, edges and the account system of J; the account system of J mints players of J."))
def issue_token(request: Request, body: TokenRequest) -> dict[str, Any]:
    s = services(request)
    secret = request.headers.get("x-bootstrap-secret")
    issuer: tokens.Principal | None
    if secret is not None:
        if not s.config.bootstrap_secret or not hmac.compare_digest(secret.encode(), s.config.bootstrap_secret.encode()):
            raise ApiError(403, "forbidden", "bad bootstrap secret")
        if not s.tokens.bootstrap_open():
            raise ApiError(403, "bootstrap_closed", "the bootstrap secret mints only until the first operator exists")
        issuer = None
    else:
        issuer = principal(request)
    try:
        tok, ttl = s.tokens.mint(issuer, body.sub, body.role, body.jurisdiction, body.ttl_s)
    except MintRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    return {"token": tok, "token_type": "Bearer", "expires_in": ttl}
