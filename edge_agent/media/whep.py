"""WHEP (draft-ietf-wish-whep) HTTP adapter of the media service: POST offer -> 201 answer +
Location + ETag (+ Link for configured ICE servers), PATCH trickle (204; ICE restart 422), DELETE
ends, OPTIONS with Accept-Post/Accept-Patch for CORS; 409/503 + Retry-After; 307 to a sibling.

Errors carry a JSON body {"error": code, "detail": text}; who may watch is edge_agent.media.access.
"""
from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

import orjson
import structlog
from aiortc import RTCIceCandidate
from aiortc.sdp import candidate_from_sdp
from fastapi import APIRouter, Request, Response

from contract import tokens
from edge_agent.media import negotiate
from edge_agent.media.access import Denied, admit, check_owner

if TYPE_CHECKING:
    from edge_agent.media.config import IceServer
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


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    return Response(content=orjson.dumps({"error": code, "detail": detail}), status_code=status,
                    media_type="application/json", headers={**CORS, **(headers or {})})


def _bearer(request: Request) -> str | None:
    """The token of `Authorization: Bearer`, else of `?token=` (a sibling's 307 Location)."""
    h = request.headers.get("authorization", "")
    if h.lower().startswith("bearer "):
        return h[7:].strip() or None
    return request.query_params.get("token") or None


def _quote(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def link_header(servers: list[IceServer]) -> str:
    """`Link: <stun:...>; rel="ice-server"` per URL (draft section 4.4), TURN with credentials."""
    links = []
    for s in servers:
        for url in s.urls:
            link = f'<{url}>; rel="ice-server"'
            if s.username is not None:
                link += f"; username={_quote(s.username)}; credential={_quote(s.credential or '')}"
                link += '; credential-type="password"'
            links.append(link)
    return ", ".join(links)


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def build_router(service: MediaService) -> APIRouter:
    router = APIRouter()
    rr = 0
    links = link_header(service.config.ice_servers)

    def principal(request: Request) -> tokens.Principal | None:
        """The caller (None when this edge has no token key: development). Raises Denied."""
        if service.token_public_key_pem is None:
            return None
        tok = _bearer(request)
        if tok is None:
            raise Denied(401, "unauthorized", "bearer token required")
        try:
            return tokens.verify(service.token_public_key_pem, tok)
        except tokens.TokenError as exc:
            raise Denied(401, "invalid_token", f"invalid token: {exc}") from exc

    def denied(exc: Denied) -> Response:
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"' if exc.code == "invalid_token" else "Bearer"}
        return _error(exc.status, exc.code, exc.message, headers if exc.status == 401 else None)

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
        try:
            who = principal(request)
            admit(who, service.jurisdiction, service.policy)
        except Denied as exc:
            if exc.status == 403:
                log.info("whep.refused", table=table_id, code=exc.code, role=getattr(who, "role", None))
            return denied(exc)
        if table_id not in service.tables:
            return _error(404, "unknown_table", f"no table {table_id} on this edge")
        if _content_type(request) != SDP:
            return _error(415, "unsupported_media_type", "Content-Type must be application/sdp",
                          headers={"Accept-Post": SDP})
        offer = (await request.body()).decode("utf-8", "replace")
        if not offer.lstrip().startswith("v=0") or "m=video" not in offer:
            return _error(400, "bad_sdp", "body is not an SDP offer with video")
        try:
            negotiate.choose(offer)  # before capacity and liveness: an offer that can never play is 4xx
        except negotiate.UnusableOffer as exc:
            return _error(400 if exc.code == "bad_sdp" else 422, exc.code, str(exc))
        if not service.has_capacity():
            if service.config.sibling_urls:
                base = service.config.sibling_urls[rr % len(service.config.sibling_urls)].rstrip("/")
                rr += 1
                # Browsers drop Authorization on a cross-origin redirect: the token rides along.
                tok = _bearer(request)
                query = f"?{urlencode({'token': tok})}" if tok else ""
                return _resp(307, headers={"Location": f"{base}/{table_id}{query}"})
            return _error(503, "at_capacity", "edge at viewer capacity",
                          headers={"Retry-After": str(service.config.retry_after_s * 5)})
        if not service.is_live(table_id):
            return _error(409, "not_live", "table feed is not live",
                          headers={"Retry-After": str(service.config.retry_after_s)})
        try:
            session = await service.open_session(table_id, offer, who)
        except negotiate.UnusableOffer as exc:
            return _error(422 if exc.code not in ("bad_sdp", "bad_offer") else 400, exc.code, str(exc))
        except TimeoutError:
            # A fan-out worker too busy to answer in time is overload, not a server error.
            return _error(503, "overloaded", "edge overloaded",
                          headers={"Retry-After": str(service.config.retry_after_s * 5)})
        location = f"{request.url.path.rstrip('/')}/{session.id}"
        log.info("whep.session", table=table_id, session=session.id, role=getattr(who, "role", None))
        headers = {"Location": location, "ETag": session.etag}
        if links:
            headers["Link"] = links
        return _resp(201, session.answer_sdp, SDP, headers)

    @router.patch("/whep/{table_id}/{session_id}")
    async def patch_session(table_id: str, session_id: str, request: Request) -> Response:
        try:
            check_owner(service.owner_of(session_id), principal(request))
        except Denied as exc:
            return denied(exc)
        except KeyError:
            return _error(404, "unknown_session", "no such session")
        session = service.session(table_id, session_id)
        if session is None:
            if any(session_id in w.sessions for w in service.workers):
                return _error(405, "trickle_unsupported",
                              "trickle ICE is not offered for this session; the answer has all candidates",
                              headers={"Allow": "DELETE, OPTIONS"})
            return _error(404, "unknown_session", "no such session")
        if _content_type(request) != TRICKLE:
            return _error(415, "unsupported_media_type", "Content-Type must be application/trickle-ice-sdpfrag",
                          headers={"Accept-Patch": TRICKLE})
        if_match = request.headers.get("if-match")
        if if_match is not None and if_match.strip() not in ("*", session.etag):
            return _error(412, "etag_mismatch", "If-Match does not name this ICE session")
        frag = (await request.body()).decode("utf-8", "replace")
        ufrag = next((ln.split(":", 1)[1].strip() for ln in frag.splitlines() if ln.startswith("a=ice-ufrag:")), None)
        remote = session.peer.pc.remoteDescription
        if ufrag is not None and remote is not None and f"a=ice-ufrag:{ufrag}" not in remote.sdp:
            return _error(422, "ice_restart_unsupported", "ICE restart is not supported")
        for ln in frag.splitlines():
            if ln.startswith("a=candidate:"):
                try:
                    cand: RTCIceCandidate = candidate_from_sdp(ln[2:].split(":", 1)[1])
                except (ValueError, IndexError):
                    return _error(400, "bad_candidate", "bad candidate line")
                cand.sdpMLineIndex = 0
                await session.peer.pc.addIceCandidate(cand)
        return _resp(204, headers={"ETag": session.etag})

    @router.delete("/whep/{table_id}/{session_id}")
    async def delete_session(table_id: str, session_id: str, request: Request) -> Response:
        try:
            check_owner(service.owner_of(session_id), principal(request))
        except Denied as exc:
            return denied(exc)
        except KeyError:
            return _error(404, "unknown_session", "no such session")
        if not await service.close_session(table_id, session_id):
            return _error(404, "unknown_session", "no such session")
        return _resp(200)

    return router
