"""Deposits, withdrawals, the AML review queue, AML flags and the commands sent to edges."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from control_plane.http.auth import principal, scope, scoped
from control_plane.http.deps import services
from control_plane.http.errors import ApiError
from control_plane.services.reviews import NotInReview, OutsideJurisdiction

router = APIRouter()


class ReviewDecision(BaseModel):
    reason: str = Field("", max_length=500)


@router.get("/v1/deposits/{deposit_id}")
def deposit_get(request: Request, deposit_id: str) -> dict[str, Any]:
    p = principal(request, "operator", "regulator")
    d = services(request).deposits.get(deposit_id)
    if d is None:
        raise ApiError(404, "not_found", "no such deposit")
    scoped(p, d["jurisdiction"])
    return d


@router.get("/v1/withdrawals/{withdrawal_id}")
def withdrawal_get(request: Request, withdrawal_id: str) -> dict[str, Any]:
    p = principal(request, "operator", "regulator")
    w = services(request).withdrawals.get(withdrawal_id)
    if w is None:
        raise ApiError(404, "not_found", "no such withdrawal")
    scoped(p, w["jurisdiction"])
    return w


@router.get("/v1/withdrawals")
def withdrawal_list(request: Request, status: str | None = None, limit: int = Query(200, ge=1, le=1000)
                    ) -> dict[str, Any]:
    """Withdrawals of the caller's jurisdiction, newest first; `status` a comma-separated list."""
    jur = scope(principal(request, "operator", "regulator"))
    statuses = tuple(x for x in (status or "").split(",") if x)
    return {"withdrawals": services(request).withdrawals.listing(jur, statuses, limit)}


@router.get("/v1/reviews")
def review_queue(request: Request) -> dict[str, Any]:
    p = principal(request, "operator")
    return {"reviews": services(request).reviews.queue(scope(p))}


def _review(request: Request, withdrawal_id: str, approve: bool, reason: str) -> dict[str, Any]:
    p = principal(request, "operator")
    s = services(request)
    try:
        out = s.reviews.decide(withdrawal_id, approve, reason, by=p.sub, jurisdiction=scope(p))
    except NotInReview as exc:
        raise ApiError(409, "not_in_review", f"withdrawal {exc} is not awaiting review") from exc
    except OutsideJurisdiction as exc:
        raise ApiError(403, "forbidden", "outside your jurisdiction") from exc
    s.wake_processor()
    s.wake_publisher()
    return out


@router.post("/v1/reviews/{withdrawal_id}/approve")
def review_approve(request: Request, withdrawal_id: str, body: ReviewDecision | None = None) -> dict[str, Any]:
    return _review(request, withdrawal_id, True, body.reason if body else "")


@router.post("/v1/reviews/{withdrawal_id}/refuse")
def review_refuse(request: Request, withdrawal_id: str, body: ReviewDecision | None = None) -> dict[str, Any]:
    return _review(request, withdrawal_id, False, body.reason if body else "")


@router.get("/v1/aml/flags")
def aml_list(request: Request, player: str | None = None, kind: str | None = None) -> dict[str, Any]:
    jur = scope(principal(request, "operator", "regulator"))
    return {"flags": services(request).aml_flags.listing(player=player, kind=kind, jurisdiction=jur)}


@router.get("/v1/commands")
def command_list(request: Request, edge_id: str | None = None) -> dict[str, Any]:
    jur = scope(principal(request, "operator"))
    return {"commands": services(request).outbox.listing(edge_id, jurisdiction=jur)}
