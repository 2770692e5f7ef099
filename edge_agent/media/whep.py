"""WHEP (IETF draft-ietf-wish-whep) endpoints: POST offer -> 201 answer + Location + ETag,
DELETE ends, PATCH trickle, OPTIONS for CORS; 409/503 + Retry-After; 307 to a sibling edge."""
from __future__ import annotations

from urllib.parse import urlencode
from typing import TYPE_CHECKING

import structlog
from aiortc import RTCIceCandidate
from aiortc.sdp import candidate_from_sdp
from fastapi import APIRouter, Request, Response

from contract import tokens
from edge_agent.media.peer import BadOffer

if TYPE_CHECKING:
    from edge_agent.media.service import MediaService

log = structlog.get_logger(__name__)
SDP = "application/sdp"
TRICKLE = "application/trickle-ice-sdpfrag"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location, ETag, Retry-After, Accept-Post, Accept-Patch, Link",
}


def _resp(status: int, body: str = "", media_type: str = "text/plain", headers: dict[str, str] | None = None) -> Response:
    return Response(content=body, status_code=status, media_type=media_type, headers={**CORS, **(headers or {})})


def _bearer(request: Request) -> str | None:
    """The token of `Authorization: Bearer`, else of `?token=` (a sibling's 307 Location)."""
    h = request.headers.get("authorization", "")
    if h.lower().startswith("bearer "):
        return h[7:].strip() or None
    return request.query_params.get("token") or None


def build_router(service: MediaService) -> APIRouter:
    router = APIRouter()
    rr = 0

    def auth_error(request: Request) -> Response | None:
        if service.token_public_key_pem is None:
            return None
        tok = _bearer(request)
        if tok is None:
            return _resp(401, "bearer token required", headers={"WWW-Authenticate": "Bearer"})
        try:
            tokens.verify(service.token_public_key_pem, tok)
        except tokens.TokenError as exc:
            return _resp(401, f"invalid token: {exc}", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return None

    @router.options("/whep/{table_id}")
    async def options_endpoint(table_id: str) -> Response:
        return _resp(204, headers={
            "Accept-Post": SDP,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
            "Access-Control-Max-Age": "86400",
        })

    @router.options("/whep/{table_id}/{session_id}")
    async def options_session(table_id: str, session_id: str) -> Response:
        return _resp(204, headers={
            "Accept-Patch": TRICKLE,
            "Access-Control-Allow-Methods": "PATCH, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
        })

    @router.post("/whep/{table_id}")
    async def post_offer(table_id: str, request: Request) -> Response:
        nonlocal rr
        if (err := auth_error(request)) is not None:
            return err
        if table_id not in service.tables:
            return _resp(404, "unknown table")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != SDP:
            return _resp(415, "Content-Type must be application/sdp", headers={"Accept-Post": SDP})
        offer = (await request.body()).decode("utf-8", "replace")
        if not offer.lstrip().startswith("v=0") or "m=video" not in offer:
            return _resp(400, "body is not an SDP offer with video")
        if not service.has_capacity():
            if service.config.sibling_urls:
                base = service.config.sibling_urls[rr % len(service.config.sibling_urls)].rstrip("/")
                rr += 1
                # Browsers drop Authorization on a cross-origin redirect: the token rides along.
                tok = _bearer(request)
                query = f"?{urlencode({'token': tok})}" if tok else ""
                return _resp(307, headers={"Location": f"{base}/{table_id}{query}"})
            return _resp(503, "edge at viewer capacity", headers={"Retry-After": str(service.config.retry_after_s * 5)})
        if not service.is_live(table_id):
            return _resp(409, "table feed is not live", headers={"Retry-After": str(service.config.retry_after_s)})
        try:
            session = await service.open_session(table_id, offer)
        except BadOffer as exc:
            return _resp(400, str(exc))
        except TimeoutError:
            # A fan-out worker too busy to answer in time is overload, not a server error.
            return _resp(503, "edge overloaded", headers={"Retry-After": str(service.config.retry_after_s * 5)})
        location = f"{request.url.path.rstrip('/')}/{session.id}"
        log.info("whep.session", table=table_id, session=session.id)
        return _resp(201, session.answer_sdp, SDP, {"Location": location, "ETag": session.etag})

    @router.patch("/whep/{table_id}/{session_id}")
    async def patch_session(table_id: str, session_id: str, request: Request) -> Response:
        if (err := auth_error(request)) is not None:
            return err
        session = service.session(table_id, session_id)
        if session is None:
            if any(session_id in w.sessions for w in service.workers):
                return _resp(405, "trickle ICE is not offered for this session; the answer has all candidates")
            return _resp(404, "unknown session")
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != TRICKLE:
            return _resp(415, "Content-Type must be application/trickle-ice-sdpfrag", headers={"Accept-Patch": TRICKLE})
        frag = (await request.body()).decode("utf-8", "replace")
        ufrag = next((ln.split(":", 1)[1].strip() for ln in frag.splitlines() if ln.startswith("a=ice-ufrag:")), None)
        remote = session.peer.pc.remoteDescription
        if ufrag is not None and remote is not None and f"a=ice-ufrag:{ufrag}" not in remote.sdp:
            return _resp(422, "ICE restart is not supported")
        for ln in frag.splitlines():
            if ln.startswith("a=candidate:"):
                try:
                    cand: RTCIceCandidate = candidate_from_sdp(ln[2:].split(":", 1)[1])
                except (ValueError, IndexError):
                    return _resp(400, "bad candidate")
                cand.sdpMLineIndex = 0
                await session.peer.pc.addIceCandidate(cand)
        return _resp(204)

    @router.delete("/whep/{table_id}/{session_id}")
    async def delete_session(table_id: str, session_id: str, request: Request) -> Response:
        if (err := auth_error(request)) is not None:
            return err
        if not await service.close_session(table_id, session_id):
            return _resp(404, "unknown session")
        return _resp(200)

    return router
