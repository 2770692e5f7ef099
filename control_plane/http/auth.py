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


ALL_JURISDICTIONS = tokens.ANY_JURISDICTION  # an operator token of "*" is head office: every jurisdiction


def scope(p: tokens.Principal) -> str | None:
    """The one jurisdiction a caller may see and act on; None: every jurisdiction (only an operator
    or admin of "*"; a regulator of "*" sees nothing). The same rule as the edge's operator API."""
    if p.role in ("operator", "admin") and p.jurisdiction == ALL_JURISDICTIONS:
        return None
    return p.jurisdiction


def scoped(p: tokens.Principal, jurisdiction: str) -> None:
    """Refuse what lies outside the caller's jurisdiction (regulators and operators alike)."""
    s = scope(p)
    if s is not None and s != jurisdiction:
        raise ApiError(403, "forbidden", "outside your jurisdiction")
