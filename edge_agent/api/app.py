"""The edge's FastAPI application: player API, WebSocket, operator actions, health, metrics."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import JSONResponse, Response

from edge_agent.api import errors
from edge_agent.api.auth import Authenticator
from edge_agent.api.fastpath import BetFastPath
from edge_agent.api.limits import KYC_MAX_BYTES, BodyLimit
from edge_agent.api.players import operator_router, player_router, public_router
from edge_agent.api.reality import RealityChecks
from edge_agent.api.web_support import web_router
from edge_agent.api.ws import player_socket
from edge_agent.casino import Casino


@dataclass
class AppState:
    casino: Casino
    auth: Authenticator
    health_checks: dict[str, Any] = field(default_factory=dict)  # name -> callable returning (ok, detail)
    reality: RealityChecks = field(init=False)  # the open sockets' reality-check reminders

    def __post_init__(self) -> None:
        self.reality = RealityChecks(self.casino)


def create_app(casino: Casino, *, extra_routers: list[APIRouter] | None = None) -> FastAPI:
    cfg = casino.config
    app = FastAPI(
        title=f"Live-casino edge {cfg.edge_id} ({cfg.jurisdiction})",
        version="1",
        description="Player API of one in-country edge appliance. Errors are "
                    "`{\"error\": {\"code\", \"message\"}}` with stable codes. Amounts are integer minor units.",
    )
    state = AppState(casino=casino, auth=Authenticator(cfg.token_public_key(), cfg.jurisdiction))
    app.state.edge = state
    errors.install(app)
    app.add_middleware(CORSMiddleware, allow_origins=cfg.http.cors_origins, allow_methods=["*"],
                       allow_headers=["*"], expose_headers=["Location", "ETag", "Retry-After", "Link"])
    app.add_middleware(errors.JsonOnly, prefix="/v1/", exempt_prefixes=("/v1/kyc",))
    app.add_middleware(BodyLimit, max_bytes=cfg.http.max_body_bytes, per_path={"/v1/kyc": KYC_MAX_BYTES})
    if cfg.regulator_access.allowed_cidrs:
        from edge_agent.regulator.networks import RegulatorNetworks

        app.add_middleware(RegulatorNetworks, access=cfg.regulator_access)
    app.include_router(public_router(state))
    app.include_router(player_router(state))
    app.include_router(operator_router(state))
    app.include_router(web_router(state))
    for r in extra_routers or []:
        app.include_router(r)

    @app.get("/healthz", tags=["operations"], summary="Liveness and readiness of the edge")
    async def healthz() -> Response:
        checks: dict[str, Any] = {"journal": {"ok": casino.store.durable_seq <= casino.store.seq,
                                              "head_seq": casino.store.seq}}
        for name, fn in state.health_checks.items():
            ok, detail = fn()
            checks[name] = {"ok": ok, "detail": detail}
        ok = all(c["ok"] for c in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "edge_id": cfg.edge_id,
                             "jurisdiction": cfg.jurisdiction, "checks": checks,
                             "tables": {t: casino.state.tables[t].accepting for t in casino.state.tables}},
                            status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.websocket("/v1/ws")
    async def ws(websocket: WebSocket) -> None:
        await player_socket(websocket, state)

    # The bet route, answered ahead of the framework stack (see fastpath.py); it sits
    # outermost, so the app keeps its own middleware for every other route.
    app.add_middleware(BetFastPath, app_state=state, max_body=cfg.http.max_body_bytes)
    return app
