"""The global audit view of an edge and checkpoint inclusion proofs."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from contract.bounds import INT64_MAX
from control_plane.http.auth import principal, scope, scoped
from control_plane.http.deps import services
from control_plane.http.errors import ApiError

router = APIRouter()


def _edge_scope(request: Request, edge_id: str) -> None:
    p = principal(request, "operator", "regulator")
    if scope(p) is not None:
        scoped(p, services(request).registry.jurisdiction_of(edge_id) or "")


@router.get("/v1/audit/edges/{edge_id}")
def audit_edge(request: Request, edge_id: str) -> dict[str, Any]:
    _edge_scope(request, edge_id)
    out = services(request).audit.edge_audit(edge_id)
    if out is None:
        raise ApiError(404, "unknown_edge", f"nothing received from edge {edge_id}")
    return out


@router.get("/v1/audit/edges/{edge_id}/checkpoints")
def audit_checkpoint(request: Request, edge_id: str,
                     covering_seq: Annotated[int, Query(ge=1, le=INT64_MAX)]) -> dict[str, Any]:
    _edge_scope(request, edge_id)
    out = services(request).checkpoints.covering(edge_id, covering_seq)
    if out is None:
        raise ApiError(404, "no_covering_checkpoint", f"no valid checkpoint of {edge_id} covers seq {covering_seq}")
    return out
