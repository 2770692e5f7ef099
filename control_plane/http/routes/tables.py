"""Tables of the edges (as their journals report them) and operator table actions via the edge."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, Field

from control_plane.http.auth import principal, scope, scoped
from control_plane.http.deps import services
from control_plane.http.errors import ApiError
from control_plane.services.tables import NoRound, UnknownTable

router = APIRouter()


class TableAction(BaseModel):
    reason: str = Field(min_length=1, max_length=200)


@router.get("/v1/tables")
def table_list(request: Request) -> dict[str, Any]:
    jur = scope(principal(request, "operator"))
    return {"tables": services(request).tables.listing(jur)}


@router.post("/v1/edges/{edge_id}/tables/{table_id}/{action}", status_code=202)
def table_control(request: Request, edge_id: str, table_id: str, action: Literal["enable", "disable", "void"],
                  body: TableAction,
                  idempotency_key: str | None = Header(None, pattern=r"^[A-Za-z0-9_-]{8,64}$")) -> dict[str, Any]:
    """Queued for the edge (202): the edge carries it out and journals the result, which the table
    list then shows. A retry with the same Idempotency-Key is the same command."""
    p = principal(request, "operator")
    s = services(request)
    jur = s.registry.jurisdiction_of(edge_id)
    if jur is None:
        raise ApiError(404, "unknown_edge", f"no edge {edge_id}")
    scoped(p, jur)
    try:
        out = s.tables.control(edge_id, table_id, action, body.reason, by=p.sub, request_id=idempotency_key)
    except UnknownTable as exc:
        raise ApiError(404, "unknown_table", str(exc)) from exc
    except NoRound as exc:
        raise ApiError(409, "no_round_in_progress", str(exc)) from exc
    s.wake_publisher()
    return out
