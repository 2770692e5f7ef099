"""HTTP API (v1). Sync handlers: FastAPI runs them in its thread pool, next to the DB calls."""
from __future__ import annotations

import hmac
import json
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import select

from contract import tokens
from control_plane import audit, reviews
from control_plane.auth import principal, scoped
from control_plane.db.models import aml_flags, commands, deposits, edges
from control_plane.domain.kyc import IllegalTransition
from control_plane.errors import ApiError
from control_plane.kyc.service import KycNotFound, VendorRefMismatch
from control_plane.kyc.vendor import sign

router = APIRouter()


def _cp(request: Request) -> Any:
    return request.app.state.cp


class TokenRequest(BaseModel):
    sub: str = Field(min_length=1, max_length=128)
    role: Literal["player", "operator", "regulator", "edge"]
    jurisdiction: str = Field(min_length=1, max_length=16)
    ttl_s: int | None = Field(None, gt=0, le=30 * 86400)


class EdgeRegistration(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    jurisdiction: str = Field(min_length=1, max_length=16)
    public_url: str = ""
    checkpoint_public_key_pem: str | None = None


class KycStatusChange(BaseModel):
    status: Literal["unverified", "pending", "verified", "rejected", "edd_required", "suspended"]


class ReviewDecision(BaseModel):
    reason: str = ""


@router.get("/healthz")
def healthz(request: Request) -> dict[str, Any]:
    cp = _cp(request)
    return {"ok": True, "nats": bool(cp.bus and cp.bus.nc and cp.bus.nc.is_connected)}


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(generate_latest(_cp(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)


# --- tokens -------------------------------------------------------------------------------------

@router.get("/v1/keys/token")
def token_key(request: Request, format: str = "json") -> Any:
    pem = _cp(request).public_pem
    if format == "pem":
        return Response(pem, media_type="application/x-pem-file")
    return {"alg": "EdDSA", "public_key_pem": pem, "issuer": tokens.ISSUER}


@router.post("/v1/tokens")
def issue_token(request: Request, body: TokenRequest) -> dict[str, Any]:
    cp = _cp(request)
    secret = request.headers.get("x-bootstrap-secret")
    if secret is not None and cp.config.bootstrap_secret:
        if not hmac.compare_digest(secret, cp.config.bootstrap_secret):
            raise ApiError(403, "forbidden", "bad bootstrap secret")
    else:
        principal(request, "operator")
    ttl = body.ttl_s or cp.config.token_ttl_s
    tok = tokens.issue(cp.signing_key, body.sub, body.role, body.jurisdiction, ttl)
    return {"token": tok, "token_type": "Bearer", "expires_in": ttl}


# --- registry and discovery ---------------------------------------------------------------------

@router.post("/v1/edges", status_code=201)
def register_edge(request: Request, body: EdgeRegistration) -> dict[str, Any]:
    principal(request, "operator")
    pem = body.checkpoint_public_key_pem
    if pem:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        try:
            ok = isinstance(serialization.load_pem_public_key(pem.encode()), Ed25519PublicKey)
        except ValueError:
            ok = False
        if not ok:
            raise ApiError(422, "invalid_key", "checkpoint_public_key_pem must be an Ed25519 public key PEM")
    _cp(request).registry.register(body.id, body.jurisdiction, body.public_url, pem)
    return {"id": body.id, "jurisdiction": body.jurisdiction, "public_url": body.public_url}


@router.get("/v1/edges")
def list_edges(request: Request) -> dict[str, Any]:
    p = principal(request, "operator", "regulator")
    rows = _cp(request).registry.list()
    if p.role == "regulator":
        rows = [r for r in rows if r["jurisdiction"] == p.jurisdiction]
    return {"edges": rows}


@router.get("/v1/discovery")
def discovery(request: Request) -> dict[str, Any]:
    p = principal(request, "player")
    any_edge, alive = _cp(request).registry.discover(p.jurisdiction)
    if not any_edge:
        raise ApiError(404, "no_edge_in_jurisdiction",
                       f"no edge serves jurisdiction {p.jurisdiction}; play is not offered from abroad")
    if not alive:
        raise ApiError(503, "no_healthy_edge", f"no edge of jurisdiction {p.jurisdiction} is healthy right now")
    return {"jurisdiction": p.jurisdiction, "probe": "rtt",
            "candidates": [{"edge_id": e.edge_id, "url": e.public_url, "load": round(e.load, 4),
                            "viewers": e.viewers, "viewer_capacity": e.viewer_capacity} for e in alive]}


# --- KYC ----------------------------------------------------------------------------------------

@router.post("/v1/kyc/callback")
async def kyc_callback(request: Request) -> dict[str, Any]:
    cp = _cp(request)
    body = await request.body()
    want = sign(cp.config.kyc.callback_secret, body)
    if not hmac.compare_digest(want, request.headers.get("x-signature", "")):
        raise ApiError(401, "bad_signature", "callback signature does not verify")
    try:
        d = json.loads(body)
        jur, player, status, ref = d["jurisdiction"], d["player"], d["status"], d["vendor_ref"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(422, "invalid_request", f"bad callback body: {exc!r}") from exc
    import anyio

    try:
        changed = await anyio.to_thread.run_sync(lambda: cp.kyc.set_status(jur, player, status, vendor_ref=ref))
    except KycNotFound as exc:
        raise ApiError(404, "kyc_not_found", str(exc)) from exc
    except VendorRefMismatch as exc:
        raise ApiError(409, "stale_callback", str(exc)) from exc
    except IllegalTransition as exc:
        raise ApiError(409, "illegal_kyc_transition", str(exc)) from exc
    cp.wake_publisher()
    return {"ok": True, "changed": changed}


@router.get("/v1/kyc/{jurisdiction}/{player}")
def kyc_get(request: Request, jurisdiction: str, player: str) -> dict[str, Any]:
    scoped(principal(request, "operator", "regulator"), jurisdiction)
    return _cp(request).kyc.get(jurisdiction, player)


@router.post("/v1/kyc/{jurisdiction}/{player}/status")
def kyc_set(request: Request, jurisdiction: str, player: str, body: KycStatusChange) -> dict[str, Any]:
    principal(request, "operator")
    cp = _cp(request)
    try:
        cp.kyc.set_status(jurisdiction, player, body.status)
    except KycNotFound as exc:
        raise ApiError(404, "kyc_not_found", str(exc)) from exc
    except IllegalTransition as exc:
        raise ApiError(409, "illegal_kyc_transition", str(exc)) from exc
    cp.wake_publisher()
    cp.wake_processor()
    return cp.kyc.get(jurisdiction, player)


# --- money --------------------------------------------------------------------------------------

@router.get("/v1/deposits/{deposit_id}")
def deposit_get(request: Request, deposit_id: str) -> dict[str, Any]:
    p = principal(request, "operator", "regulator")
    with _cp(request).engine.connect() as c:
        r = c.execute(select(deposits).where(deposits.c.deposit_id == deposit_id)).mappings().first()
    if r is None:
        raise ApiError(404, "not_found", "no such deposit")
    scoped(p, r["jurisdiction"])
    return dict(r)


@router.get("/v1/withdrawals/{withdrawal_id}")
def withdrawal_get(request: Request, withdrawal_id: str) -> dict[str, Any]:
    p = principal(request, "operator", "regulator")
    w = reviews.get(_cp(request).engine, withdrawal_id)
    if w is None:
        raise ApiError(404, "not_found", "no such withdrawal")
    scoped(p, w["jurisdiction"])
    return w


@router.get("/v1/reviews")
def review_queue(request: Request) -> dict[str, Any]:
    principal(request, "operator")
    return {"reviews": reviews.queue(_cp(request).engine)}


def _review(request: Request, withdrawal_id: str, approve: bool, reason: str) -> dict[str, Any]:
    principal(request, "operator")
    cp = _cp(request)
    try:
        out = reviews.decide(cp.engine, withdrawal_id, approve, reason)
    except reviews.NotInReview as exc:
        raise ApiError(409, "not_in_review", f"withdrawal {exc} is not awaiting review") from exc
    cp.wake_processor()
    cp.wake_publisher()
    return out


@router.post("/v1/reviews/{withdrawal_id}/approve")
def review_approve(request: Request, withdrawal_id: str, body: ReviewDecision | None = None) -> dict[str, Any]:
    return _review(request, withdrawal_id, True, body.reason if body else "")


@router.post("/v1/reviews/{withdrawal_id}/refuse")
def review_refuse(request: Request, withdrawal_id: str, body: ReviewDecision | None = None) -> dict[str, Any]:
    return _review(request, withdrawal_id, False, body.reason if body else "")


@router.get("/v1/aml/flags")
def aml_list(request: Request, player: str | None = None, kind: str | None = None) -> dict[str, Any]:
    p = principal(request, "operator", "regulator")
    q = select(aml_flags).order_by(aml_flags.c.id)
    if player:
        q = q.where(aml_flags.c.player == player)
    if kind:
        q = q.where(aml_flags.c.kind == kind)
    if p.role == "regulator":
        q = q.where(aml_flags.c.jurisdiction == p.jurisdiction)
    with _cp(request).engine.connect() as c:
        rows = [dict(r) for r in c.execute(q.limit(1000)).mappings()]
    return {"flags": rows}


@router.get("/v1/commands")
def command_list(request: Request, edge_id: str | None = None) -> dict[str, Any]:
    principal(request, "operator")
    q = select(commands).order_by(commands.c.created_ts, commands.c.id)
    if edge_id:
        q = q.where(commands.c.edge_id == edge_id)
    with _cp(request).engine.connect() as c:
        rows = [{**dict(r), "body": json.loads(r["body"])} for r in c.execute(q.limit(1000)).mappings()]
    return {"commands": rows}


# --- audit --------------------------------------------------------------------------------------

def _edge_scope(request: Request, edge_id: str) -> None:
    p = principal(request, "operator", "regulator")
    if p.role == "regulator":
        with _cp(request).engine.connect() as c:
            jur = c.execute(select(edges.c.jurisdiction).where(edges.c.id == edge_id)).scalar()
        scoped(p, jur or "")


@router.get("/v1/audit/edges/{edge_id}")
def audit_edge(request: Request, edge_id: str) -> dict[str, Any]:
    _edge_scope(request, edge_id)
    out = audit.edge_audit(_cp(request).engine, edge_id)
    if out is None:
        raise ApiError(404, "unknown_edge", f"nothing received from edge {edge_id}")
    return out


@router.get("/v1/audit/edges/{edge_id}/checkpoints")
def audit_checkpoint(request: Request, edge_id: str, covering_seq: int) -> dict[str, Any]:
    _edge_scope(request, edge_id)
    out = _cp(request).checkpoints.covering(edge_id, covering_seq)
    if out is None:
        raise ApiError(404, "no_covering_checkpoint", f"no valid checkpoint of {edge_id} covers seq {covering_seq}")
    return out
