"""The regulator's read-only API (`/regulator/api/...`) and HTML view (`/regulator/...`).

Access: `Authorization: Bearer <jwt>` (or, for the browser view, the `regulator_token` cookie
set by the login form), an Ed25519 token of role `regulator` whose `jur` is this edge's
jurisdiction. Anything else: 401 (no or bad token) or 403 `forbidden` (operator, player,
regulator of another jurisdiction). Errors are `{"error": {"code", "message"}}`.

Every answered query is journaled as `regulator.query` (regulator id, route, parameters with
players named by pseudonym only, status) and is durable before the answer leaves; a
regulator token of another jurisdiction that is refused is journaled too.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import sqlite3
import tempfile
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Request
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from contract import aml, tokens
from contract.bounds import INT64_MAX
from edge_agent.audit import checkpoints as CP
from edge_agent.audit.export import export_bundle
from edge_agent.casino import Casino
from edge_agent.domain.errors import DomainError
from edge_agent.evidence.routes import clip_info, regulator_clip
from edge_agent.regulator import html as H
from edge_agent.regulator import queries as Q
from edge_agent.regulator.access import AccessDenied, authorize, journal_query
from edge_agent.regulator.errors import RegError

COOKIE = "regulator_token"
log = structlog.get_logger("regulator")


def _error(status: int, code: str, message: str, html: bool = False) -> Response:
    if html:
        return HTMLResponse(H.error_page(status, code, message), status_code=status)
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _token(request: Request) -> str | None:
    h = request.headers.get("authorization")
    if h and h[:7].lower() == "bearer ":
        return h[7:].strip() or None
    return request.cookies.get(COOKIE) or None


_DIGITS = re.compile(r"-?[0-9]{1,19}")


def parse_int(raw: str, name: str, lo: int = 0, hi: int = INT64_MAX) -> int:
    """ASCII digits only (int() would take " 5", "1_0", "٣"), inside lo..hi (at most signed 64 bits)."""
    if not _DIGITS.fullmatch(raw):
        raise RegError(422, "invalid_request", f"{name} must be an integer")
    v = int(raw)
    if not lo <= v <= hi:
        raise RegError(422, "invalid_request", f"{name} must be within {lo}..{hi}")
    return v


class Ctx:
    def __init__(self, request: Request, principal: tokens.Principal) -> None:
        self.request = request
        self.principal = principal
        # What gets journaled: path parameters and the query parameters a handler reads (never
        # free text it ignores); handlers replace anything that could be personal data.
        self.params: dict[str, Any] = dict(request.path_params)

    def int_param(self, name: str, default: int | None = None, *, lo: int = 0, hi: int = INT64_MAX) -> int | None:
        raw = self.request.query_params.get(name)
        if raw is None or raw == "":
            return default
        v = parse_int(raw, name, lo, hi)
        self.params[name] = v
        return v

    def str_param(self, name: str) -> str | None:
        v = self.request.query_params.get(name)
        if not v:
            return None
        self.params[name] = v[:200]
        return v[:200]


Handler = Callable[[Ctx], Awaitable[Any]]


def regulator_router(casino: Casino, token_public_key_pem: str | None) -> APIRouter:
    router = APIRouter(tags=["regulator"])
    cfg = casino.config
    db_path = Path(casino.store.path)
    tree_lock = asyncio.Lock()
    tree_box: dict[str, CP.MerkleLog] = {}
    tree_conn: list[sqlite3.Connection] = []

    async def in_db(fn: Callable[[sqlite3.Connection], Any]) -> Any:
        def run() -> Any:
            conn = Q.connect(db_path)
            try:
                return fn(conn)
            finally:
                conn.close()
        return await asyncio.to_thread(run)

    def route(path: str, fn: Handler, *, html: bool = False, summary: str = "", query: str = "") -> None:
        """`query`: space-separated query parameters (name or name:integer), for the OpenAPI schema."""
        async def endpoint(request: Request) -> Response:
            template = path
            try:
                principal = authorize(token_public_key_pem, cfg.jurisdiction, _token(request))
            except AccessDenied as d:
                if d.principal is not None and d.principal.role == "regulator":
                    # A signed regulator token of another jurisdiction: recorded, not answered.
                    try:
                        await journal_query(casino, d.principal, template, {}, d.status)
                    except Exception:
                        log.exception("could not journal a refused regulator query")
                if html and d.status == 401:
                    return HTMLResponse(H.login_page(d.message), status_code=401)
                return _error(d.status, d.code, d.message, html)
            ctx = Ctx(request, principal)
            try:
                result = await fn(ctx)
                status = result.status_code if isinstance(result, Response) else 200
            except RegError as e:
                result, status = _error(e.status, e.code, e.message, html), e.status
            except DomainError as e:
                result, status = _error(e.status, e.code, e.message, html), e.status
            except Exception:
                log.exception("regulator query failed", route=template)
                result, status = _error(500, "internal_error", "the query failed", html), 500
            try:
                await journal_query(casino, principal, template, ctx.params, status)
            except Exception:  # noqa: BLE001 - never answer a query that is not on record
                return _error(503, "journal_unavailable", "the query could not be journaled", html)
            if isinstance(result, Response):
                return result
            if html:
                return HTMLResponse(result)
            return JSONResponse(result)

        endpoint.__name__ = "reg_" + "".join(c if c.isalnum() else "_" for c in path) + ("_html" if html else "")
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in re.findall(r"{(\w+)}", path)]
        for q in query.split():
            name, _, typ = q.partition(":")
            params.append({"name": name, "in": "query", "required": False, "schema": {"type": typ or "string"}})
        router.add_api_route(path, endpoint, methods=["GET"], summary=summary or None,
                             include_in_schema=not html, response_class=HTMLResponse if html else JSONResponse,
                             openapi_extra={"parameters": params} if params else None,
                             responses={401: {"description": "no or invalid token"},
                                        403: {"description": "not a regulator of this jurisdiction"},
                                        404: {"description": "no such table, round, player or checkpoint"},
                                        422: {"description": "a parameter does not parse (integers: ASCII digits, "
                                                             "signed 64 bits)"},
                                        503: {"description": "the query could not be journaled"}})

    # --- shared query logic (JSON and HTML render the same data) ------------------------------

    def identity() -> dict[str, Any]:
        return {"edge_id": cfg.edge_id, "jurisdiction": cfg.jurisdiction, "currency": cfg.currency}

    async def summary_data(ctx: Ctx) -> dict[str, Any]:
        data = await in_db(Q.summary)
        return {**identity(), **data, "tables": [casino.table_view(t) for t in list(casino.state.tables)]}

    async def rounds_data(ctx: Ctx) -> dict[str, Any]:
        table_id, status = ctx.str_param("table_id"), ctx.str_param("status")
        before, limit = ctx.int_param("before_seq"), ctx.int_param("limit", 50, lo=1, hi=Q.MAX_LIMIT)
        rows = await in_db(lambda c: Q.rounds(c, table_id=table_id, status=status, before_seq=before, limit=limit))
        return {"rounds": rows}

    async def round_data(ctx: Ctx) -> dict[str, Any]:
        p = ctx.request.path_params
        n = parse_int(p["n"], "n", 1)
        ctx.params["n"] = n
        proof = casino.round_proof(p["table_id"], p["chain_id"], n)
        detail = await in_db(lambda c: Q.round_detail(c, proof))
        return {**detail, "video": clip_info(casino, p["table_id"], p["chain_id"], n)}

    async def players_data(ctx: Ctx) -> dict[str, Any]:
        limit, offset = ctx.int_param("limit", 100, lo=1, hi=Q.MAX_LIMIT), ctx.int_param("offset", 0)
        rows = await in_db(lambda c: Q.players(c, limit=limit, offset=offset))
        for r in rows:
            r.update(Q.live_player(casino, r["pseudonym"]))
        return {"players": rows}

    async def _resolve(ctx: Ctx) -> dict[str, Any]:
        ref = ctx.request.path_params["player"]
        p = await in_db(lambda c: Q.resolve_player(c, ref))
        # Journal the pseudonym, never the player id (personal data stays out of the journal).
        ctx.params["player"] = p["pseudonym"] if p else "sha256:" + hashlib.sha256(ref.encode()).hexdigest()[:16]
        if p is None:
            raise RegError(404, "not_found", "no such player")
        return p

    async def player_data(ctx: Ctx) -> dict[str, Any]:
        p = await _resolve(ctx)
        psn = p["pseudonym"]
        kyc = casino.state.kyc.get(psn, "unverified")
        data = await in_db(lambda c: Q.player_detail(c, psn, kyc))
        data["wallet"] = casino.wallet(psn)
        data["limits"] = casino.limits_view(psn)
        return data

    async def player_bets_data(ctx: Ctx) -> dict[str, Any]:
        p = await _resolve(ctx)
        limit, before = ctx.int_param("limit", 200, lo=1, hi=Q.MAX_LIMIT), ctx.int_param("before_seq")
        rows = await in_db(lambda c: Q.player_bets(c, p["pseudonym"], limit=limit, before_seq=before))
        return {"player": p["pseudonym"], "player_id": p["player_id"], "bets": rows}

    async def voids_data(ctx: Ctx) -> dict[str, Any]:
        limit = ctx.int_param("limit", 200, lo=1, hi=Q.MAX_LIMIT)
        return {"voids": await in_db(lambda c: Q.voids(c, limit=limit))}

    async def config_data(ctx: Ctx) -> dict[str, Any]:
        limit = ctx.int_param("limit", 500, lo=1, hi=Q.MAX_LIMIT)
        return {"changes": await in_db(lambda c: Q.config_changes(c, limit=limit))}

    async def aml_data(ctx: Ctx) -> dict[str, Any]:
        return {"cdd_threshold": aml.cdd_threshold(cfg.currency), "currency": cfg.currency,
                "flags": await in_db(Q.aml)}

    async def access_data(ctx: Ctx) -> dict[str, Any]:
        limit = ctx.int_param("limit", 200, lo=1, hi=Q.MAX_LIMIT)
        return {"queries": await in_db(lambda c: Q.access_log(c, limit=limit))}

    async def journal_data(ctx: Ctx) -> dict[str, Any]:
        a, b = ctx.int_param("from_seq", 1, lo=1), ctx.int_param("to_seq", None, lo=1)
        limit, kind = ctx.int_param("limit", 200, lo=1, hi=Q.MAX_LIMIT), ctx.str_param("kind")
        rows = await in_db(lambda c: Q.entries(c, from_seq=a, to_seq=b, kinds=(kind,) if kind else None, limit=limit))
        return {"entries": rows}

    async def export_data(ctx: Ctx) -> Response:
        a, b = ctx.int_param("from_seq", None, lo=1), ctx.int_param("to_seq", None, lo=1)
        ta, tb = ctx.int_param("from_ts"), ctx.int_param("to_ts")
        with_video = ctx.int_param("with_video", 0, lo=0, hi=1) == 1 and getattr(casino, "evidence", None) is not None
        tmp = Path(tempfile.mkdtemp(prefix="regexport-"))

        def build() -> tuple[Path, Any]:
            name = f"export-{cfg.edge_id}"
            m = export_bundle(db_path, tmp / name, edge_id=cfg.edge_id, jurisdiction=cfg.jurisdiction,
                              from_seq=a, to_seq=b, from_ts=ta, to_ts=tb)
            if with_video:  # the clips of the bundle's rounds (video/, listed in the manifest)
                from edge_agent.evidence.export import add_videos

                m = add_videos(tmp / name, casino.evidence.library.root)
            z = tmp / f"{name}-{m.from_seq}-{m.to_seq}.zip"
            with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in ("journal.jsonl", "manifest.json", *[f"video/{v}" for v in getattr(m, "videos", None) or {}]):
                    zf.write(tmp / name / f, f"{name}-{m.from_seq}-{m.to_seq}/{f}")
            return z, m

        try:
            z, m = await asyncio.to_thread(build)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        ctx.params.update(exported_from=m.from_seq, exported_to=m.to_seq, head_hash=m.head_hash)
        return FileResponse(z, media_type="application/zip", filename=z.name,
                            headers={"X-Bundle-From-Seq": str(m.from_seq), "X-Bundle-To-Seq": str(m.to_seq),
                                     "X-Bundle-Head-Hash": m.head_hash},
                            background=BackgroundTask(shutil.rmtree, tmp, True))

    async def inclusion_data(ctx: Ctx) -> dict[str, Any]:
        durable = casino.store.durable_seq
        size = ctx.int_param("size", durable, lo=1, hi=max(durable, 1))
        seq = ctx.int_param("seq", None, lo=1, hi=max(size or 1, 1))
        if seq is None or size is None or size > durable:
            raise RegError(422, "invalid_request", "seq and size (1 <= seq <= size <= head) are required")

        def prove() -> dict[str, Any]:
            if not tree_conn:
                tree_conn.append(Q.connect(db_path))
            conn = tree_conn[0]
            tree = tree_box.get("t")
            if tree is None:
                tree = tree_box["t"] = CP.MerkleLog(CP.journal_fetcher(lambda s, p=(): conn.execute(s, p).fetchall()))
            return CP.inclusion_proof_for(conn, seq, size, tree=tree)

        async with tree_lock:
            return await asyncio.to_thread(prove)

    async def checkpoint_data(ctx: Ctx) -> dict[str, Any]:
        raw = await in_db(lambda c: Q.kv(c, CP.KV_LAST))
        if raw is None:
            raise RegError(404, "not_found", "no checkpoint published yet")
        return {"checkpoint": json.loads(raw)}

    # --- JSON API -----------------------------------------------------------------------------

    api = "/regulator/api"
    route(f"{api}/summary", summary_data, summary="Edge identity, journal head, counts, tables")
    route(f"{api}/rounds", rounds_data, summary="Finished rounds, newest first",
          query="table_id status before_seq:integer limit:integer")
    route(f"{api}/rounds/{{table_id}}/{{chain_id}}/{{n}}", round_data,
          summary="One round with its proof, the journal entries behind it and their re-check")
    route(f"{api}/players", players_data, summary="Players with in-country personal data",
          query="limit:integer offset:integer")
    route(f"{api}/players/{{player}}", player_data,
          summary="One player (pseudonym or player id): KYC, limits and their history, breaks, exclusions, AML")
    route(f"{api}/players/{{player}}/bets", player_bets_data, summary="Bets of one player with their results",
          query="limit:integer before_seq:integer")
    route(f"{api}/voids", voids_data, summary="Voided rounds with reason codes and refunds", query="limit:integer")
    route(f"{api}/config", config_data, summary="Rule sets, table enable/disable, feed changes, seed chains",
          query="limit:integer")
    route(f"{api}/aml", aml_data, summary="KYC/AML flags")
    route(f"{api}/journal", journal_data, summary="Raw journal entries",
          query="from_seq:integer to_seq:integer kind limit:integer")
    route(f"{api}/access-log", access_data, summary="Every regulator query made at this edge", query="limit:integer")
    route(f"{api}/export", export_data, summary="Export bundle (CONTRACT section 5) as a zip",
          query="from_seq:integer to_seq:integer from_ts:integer to_ts:integer with_video:integer")
    route(f"{api}/merkle/inclusion", inclusion_data,
          summary="RFC 6962 inclusion proof of entry `seq` in the journal tree of `size` entries",
          query="seq:integer size:integer")
    route(f"{api}/checkpoints/latest", checkpoint_data, summary="The last signed checkpoint sent to the cloud")
    route(f"{api}/rounds/{{table_id}}/{{chain_id}}/{{n}}/video", regulator_clip(casino),
          summary="The round's clip (MP4; Range for seeking; ?download=1 as an attachment)")

    # --- HTML view ----------------------------------------------------------------------------

    def page(fn: Handler, render: Callable[[dict[str, Any]], str]) -> Handler:
        async def h(ctx: Ctx) -> str:
            return render({**identity(), "regulator": ctx.principal.sub, **(await fn(ctx))})
        return h

    route("/regulator/", page(summary_data, H.summary_page), html=True)
    route("/regulator/rounds", page(rounds_data, H.rounds_page), html=True)
    route("/regulator/rounds/{table_id}/{chain_id}/{n}", page(round_data, H.round_page), html=True)
    route("/regulator/rounds/{table_id}/{chain_id}/{n}/video", regulator_clip(casino), html=True)
    route("/regulator/players", page(players_data, H.players_page), html=True)
    route("/regulator/players/{player}", page(player_data, H.player_page), html=True)
    route("/regulator/voids", page(voids_data, H.voids_page), html=True)
    route("/regulator/config", page(config_data, H.config_page), html=True)
    route("/regulator/aml", page(aml_data, H.aml_page), html=True)
    route("/regulator/access-log", page(access_data, H.access_page), html=True)

    @router.get("/regulator/login", include_in_schema=False)
    async def login_form() -> Response:
        return HTMLResponse(H.login_page())

    @router.post("/regulator/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        body = (await request.body())[:16_384].decode("utf-8", "replace")
        token = (parse_qs(body).get("token") or [""])[0].strip()
        try:
            authorize(token_public_key_pem, cfg.jurisdiction, token)
        except AccessDenied as d:
            return HTMLResponse(H.login_page(d.message), status_code=d.status)
        resp = RedirectResponse("/regulator/", status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/regulator",
                        secure=request.url.scheme == "https")
        return resp

    @router.post("/regulator/logout", include_in_schema=False)
    async def logout() -> Response:
        resp = RedirectResponse("/regulator/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/regulator")
        return resp

    return router
