"""Token issuance and the public key that verifies tokens."""
from __future__ import annotations

import hmac
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from contract import tokens
from control_plane.http.auth import principal
from control_plane.http.deps import services
from control_plane.http.errors import ApiError

router = APIRouter()


class TokenRequest(BaseModel):
    sub: str = Field(min_length=1, max_length=128)
    role: Literal["player", "operator", "regulator", "edge"]
    jurisdiction: str = Field(min_length=1, max_length=16)
    ttl_s: int | None = Field(None, gt=0, le=30 * 86400)


@router.get("/v1/keys/token", response_model=None)
def token_key(request: Request, format: str = "json") -> dict[str, Any] | Response:
    pem = services(request).public_pem
    if format == "pem":
        return Response(pem, media_type="application/x-pem-file")
    return {"alg": "EdDSA", "public_key_pem": pem, "issuer": tokens.ISSUER}


@router.post("/v1/tokens")
def issue_token(request: Request, body: TokenRequest) -> dict[str, Any]:
    s = services(request)
    secret = request.headers.get("x-bootstrap-secret")
    if secret is not None and s.config.bootstrap_secret:
        if not hmac.compare_digest(secret, s.config.bootstrap_secret):
            raise ApiError(403, "forbidden", "bad bootstrap secret")
    else:
        principal(request, "operator")
    ttl = body.ttl_s or s.config.token_ttl_s
    tok = tokens.issue(s.signing_key, body.sub, body.role, body.jurisdiction, ttl)
    return {"token": tok, "token_type": "Bearer", "expires_in": ttl}
