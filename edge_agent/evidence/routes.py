"""Serving round clips: to the jurisdiction's regulator (through the regulator router: audited like
every regulator query) and to a player, for a round that player had a bet in (disputes).

Clips are served as files with HTTP Range support, so a browser's <video> can seek; every answer
carries the clip's journaled hash (`X-Clip-SHA256`) and journal seq (`X-Round-Video-Seq`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, JSONResponse, Response

from contract import journal as J
from edge_agent.api.auth import bearer
from edge_agent.evidence.service import EvidenceService


class ClipNotFound(Exception):
    pass


def _evidence(casino: Any) -> EvidenceService | None:
    return getattr(casino, "evidence", None)


def clip_info(casino: Any, table_id: str, chain_id: str, n: int) -> dict[str, Any] | None:
    """The round's `round.video` data and whether the clip is still kept (for the round view)."""
    ev = _evidence(casino)
    if ev is None:
        return None
    rec = ev.clips.get((table_id, chain_id, n))
    if rec is None:
        return None
    kept = ev.clip_file(table_id, chain_id, n) is not None
    return {"sha256": rec.sha256, "bytes": rec.bytes, "kept": kept,
            "url": f"/regulator/rounds/{table_id}/{chain_id}/{n}/video"}


def clip_response(casino: Any, table_id: str, chain_id: str, n: int, download: bool) -> Response:
    ev = _evidence(casino)
    found = ev.clip_file(table_id, chain_id, n) if ev is not None else None
    if found is None:
        raise ClipNotFound(f"no clip kept for round {table_id}/{chain_id}/{n}")
    path, rec = found
    return FileResponse(Path(path), media_type="video/mp4",
                        filename=path.name if download else None,
                        content_disposition_type="attachment" if download else "inline",
                        headers={"X-Clip-SHA256": rec.sha256, "Cache-Control": "private, no-store"})


def regulator_clip(casino: Any) -> Any:
    """A regulator-router handler (ctx -> Response): auth and audit are the router's."""
    from edge_agent.regulator.errors import RegError

    async def handler(ctx: Any) -> Response:
        p = ctx.request.path_params
        try:
            n = int(p["n"])
        except ValueError:
            raise RegError(422, "invalid_request", "n must be an integer") from None
        ctx.params["n"] = n
        download = ctx.request.query_params.get("download") == "1"
        if "range" in ctx.request.headers:
            ctx.params["range"] = ctx.request.headers["range"][:64]
        try:
            return clip_response(casino, p["table_id"], p["chain_id"], n, download)
        except ClipNotFound as exc:
            raise RegError(404, "not_found", str(exc)) from None
    return handler


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def player_clip_router(app_state: Any) -> APIRouter:
    """`GET /v1/rounds/{table_id}/{chain_id}/{n}/video`: the clip of a round the player bet in."""
    r = APIRouter(prefix="/v1", tags=["players"])
    casino, auth = app_state.casino, app_state.auth

    @r.get("/rounds/{table_id}/{chain_id}/{n}/video", summary="The clip of a round you played in (MP4, Range)")
    async def player_clip(request: Request, table_id: str, chain_id: str, n: int) -> Response:
        from edge_agent.domain.errors import DomainError

        try:
            p = auth.player(bearer(request.headers.get("authorization")))
            psn = casino.pseudonym(p.sub)
            proof = casino.round_proof(table_id, chain_id, n)
        except DomainError as e:
            return _error(e.status, e.code, e.message)
        played = any(e["kind"] == J.BET_PLACED and e["data"].get("player") == psn for e in proof["entries"])
        if not played:
            return _error(403, "forbidden", "you can see the clips of rounds you played in only")
        try:
            return clip_response(casino, table_id, chain_id, n, request.query_params.get("download") == "1")
        except ClipNotFound as exc:
            return _error(404, "not_found", str(exc))

    return r


