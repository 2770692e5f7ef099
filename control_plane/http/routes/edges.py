"""Edge registry and discovery."""
from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from control_plane.http.auth import principal, scope, scoped
from control_plane.http.deps import services
from control_plane.http.errors import ApiError

router = APIRouter()


class EdgeRegistration(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    jurisdiction: str = Field(min_length=1, max_length=16)
    public_url: str = ""
    checkpoint_public_key_pem: str | None = None


@router.post("/v1/edges", status_code=201)
def register_edge(request: Request, body: EdgeRegistration) -> dict[str, Any]:
    scoped(principal(request, "operator"), body.jurisdiction)
    pem = body.checkpoint_public_key_pem
    if pem:
        try:
            ok = isinstance(serialization.load_pem_public_key(pem.encode()), Ed25519PublicKey)
        except ValueError:
            ok = False
        if not ok:
            raise ApiError(422, "invalid_key", "checkpoint_public_key_pem must be an Ed25519 public key PEM")
    services(request).registry.register(body.id, body.jurisdiction, body.public_url, pem)
    return {"id": body.id, "jurisdiction": body.jurisdiction, "public_url": body.public_url}


@router.get("/v1/edges")
def list_edges(request: Request) -> dict[str, Any]:
    jur = scope(principal(request, "operator", "regulator"))
    rows = services(request).registry.list()
    return {"edges": [r for r in rows if jur is None or r["jurisdiction"] == jur]}


@router.get("/v1/discovery")
def discovery(request: Request) -> dict[str, Any]:
    p = principal(request, "player")
    any_edge, alive = services(request).registry.discover(p.jurisdiction)
    if not any_edge:
        raise ApiError(404, "no_edge_in_jurisdiction",
                       f"no edge serves jurisdiction {p.jurisdiction}; play is not offered from abroad")
    if not alive:
        raise ApiError(503, "no_healthy_edge", f"no edge of jurisdiction {p.jurisdiction} is healthy right now")
    return {"jurisdiction": p.jurisdiction, "probe": "rtt",
            "candidates": [{"edge_id": e.edge_id, "url": e.public_url, "load": round(e.load, 4),
                            "viewers": e.viewers, "viewer_capacity": e.viewer_capacity} for e in alive]}
