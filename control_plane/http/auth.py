"""Bearer tokens (contract.tokens) for HTTP callers."""
from __future__ import annotations

from fastapi import Request

from contract import tokens
from control_plane.http.deps import services
from control_plane.http.errors import ApiError


def principal(request: Request, *roles: str) -> tokens.Principal:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise ApiError(401, "unauthorized", "a bearer token is required")
    try:
        p = tokens.verify(services(request).public_pem, header[7:].strip())
    except tokens.TokenError as exc:
        raise ApiError(401, "invalid_token", str(exc)) from exc
    if roles and p.role not in roles:
        raise ApiError(403, "forbidden", f"role {p.role} may not do this")
    return p


def scoped(p: tokens.Principal, jurisdiction: str) -> None:
    """Regulators see only their own jurisdiction; operators see everything."""
    if p.role == "regulator" and p.jurisdiction != jurisdiction:
        raise ApiError(403, "forbidden", "outside your jurisdiction")
