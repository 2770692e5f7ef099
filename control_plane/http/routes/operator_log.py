"""Who the caller is, and the operator action log of their jurisdiction."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from control_plane.http.auth import principal, scope
from control_plane.http.deps import services

router = APIRouter()


@router.get("/v1/whoami")
def whoami(request: Request) -> dict[str, Any]:
    p = principal(request)
    return {"sub": p.sub, "role": p.role, "jurisdiction": p.jurisdiction, "scope": scope(p)}


@router.get("/v1/operator-actions")
def operator_actions(request: Request, limit: int = Query(200, ge=1, le=1000)) -> dict[str, Any]:
    jur = scope(principal(request, "operator", "regulator"))
    return {"actions": services(request).operator_log.listing(jur, limit)}
