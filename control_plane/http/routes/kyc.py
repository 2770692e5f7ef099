"""KYC: the vendor's signed webhook and operator decisions."""
from __future__ import annotations

import hmac
import json
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from control_plane.domain.kyc import IllegalTransition
from control_plane.http.auth import principal, scope, scoped
from control_plane.http.deps import services
from control_plane.http.errors import ApiError
from control_plane.ports.kyc_vendor import sign
from control_plane.services.kyc import KycNotFound, VendorRefMismatch

router = APIRouter()


class KycStatusChange(BaseModel):
    status: Literal["unverified", "pending", "verified", "rejected", "edd_required", "suspended"]
    reason: str = Field("", max_length=500)  # recorded in the operator log


@router.post("/v1/kyc/callback")
async def kyc_callback(request: Request) -> dict[str, Any]:
    s = services(request)
    body = await request.body()
    want = sign(s.config.kyc.callback_secret, body)
    if not hmac.compare_digest(want, request.headers.get("x-signature", "")):
        raise ApiError(401, "bad_signature", "callback signature does not verify")
    try:
        d = json.loads(body)
        jur, player, status, ref = d["jurisdiction"], d["player"], d["status"], d["vendor_ref"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(422, "invalid_request", f"bad callback body: {exc!r}") from exc
    try:
        changed = await anyio.to_thread.run_sync(lambda: s.kyc.set_status(jur, player, status, vendor_ref=ref))
    except KycNotFound as exc:
        raise ApiError(404, "kyc_not_found", str(exc)) from exc
    except VendorRefMismatch as exc:
        raise ApiError(409, "stale_callback", str(exc)) from exc
    except IllegalTransition as exc:
        raise ApiError(409, "illegal_kyc_transition", str(exc)) from exc
    s.wake_publisher()
    return {"ok": True, "changed": changed}


@router.get("/v1/kyc")
def kyc_list(request: Request, status: str | None = None, limit: int = Query(200, ge=1, le=1000)
             ) -> dict[str, Any]:
    """KYC records of the caller's jurisdiction; `status` a comma-separated list."""
    jur = scope(principal(request, "operator", "regulator"))
    statuses = tuple(x for x in (status or "").split(",") if x)
    return {"kyc": services(request).kyc.listing(jur, statuses, limit)}


@router.get("/v1/kyc/{jurisdiction}/{player}")
def kyc_get(request: Request, jurisdiction: str, player: str) -> dict[str, Any]:
    scoped(principal(request, "operator", "regulator"), jurisdiction)
    return services(request).kyc.get(jurisdiction, player)


@router.post("/v1/kyc/{jurisdiction}/{player}/status")
def kyc_set(request: Request, jurisdiction: str, player: str, body: KycStatusChange) -> dict[str, Any]:
    p = principal(request, "operator")
    scoped(p, jurisdiction)
    s = services(request)
    try:
        s.kyc.set_status(jurisdiction, player, body.status, by=p.sub, reason=body.reason)
    except KycNotFound as exc:
        raise ApiError(404, "kyc_not_found", str(exc)) from exc
    except IllegalTransition as exc:
        raise ApiError(409, "illegal_kyc_transition", str(exc)) from exc
    s.wake_publisher()
    s.wake_processor()
    return s.kyc.get(jurisdiction, player)
