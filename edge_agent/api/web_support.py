"""Small routes for the player web client (edge_agent/web/static, mounted at /play)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import Histogram
from pydantic import BaseModel, Field, ValidationError
from starlette.responses import Response

from edge_agent.api.auth import bearer
from edge_agent.domain.errors import DomainError

# An installed wheel carries the document in the package (setup.py copies it at build time);
# a source checkout (editable install, the demo) reads docs/ itself.
_FAIRNESS = (Path(__file__).resolve().parents[1] / "docs" / "FAIRNESS.md",
             Path(__file__).resolve().parents[2] / "docs" / "FAIRNESS.md")

# Measured where it can be: in the player's browser, from the capture clock drawn in the frame
# (edge_agent/studio) against the edge's clock. Clients report it; alerts read the quantiles.
GLASS_TO_GLASS = Histogram("media_glass_to_glass_seconds", "Camera capture to decoded frame at the player, as reported by clients",
                           ("table",), buckets=(0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1.0, 2.0, 5.0))


class LatencyReport(BaseModel):
    table_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    glass_to_glass_ms: float = Field(ge=0, le=60_000)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    from edge_agent.api.players import ERRORS
    return {c: ERRORS[c] for c in codes}


def web_router(app_state: Any) -> APIRouter:
    r = APIRouter(tags=["web"])

    @r.get("/v1/docs/fairness", responses=_errors(404), summary="How rounds are provably fair (docs/FAIRNESS.md, Markdown)")
    async def fairness_doc() -> Response:
        path = next((p for p in _FAIRNESS if p.is_file()), None)
        if path is None:
            return Response('{"error": {"code": "not_found", "message": "FAIRNESS.md is not installed"}}',
                            status_code=404, media_type="application/json")
        return Response(path.read_text(encoding="utf-8"), media_type="text/plain; charset=utf-8")

    @r.post("/v1/telemetry/latency", status_code=204, responses=_errors(401, 403, 404, 413, 415, 422),
            summary="A player's client reports the glass-to-glass latency it measured (feeds media_glass_to_glass_seconds)")
    async def latency(request: Request) -> Response:
        app_state.auth.player(bearer(request.headers.get("authorization")))
        try:
            report = LatencyReport.model_validate_json(await request.body())
        except ValidationError as exc:
            raise DomainError("invalid_request", str(exc.errors(include_url=False)[0]["msg"]), 422) from None
        if report.table_id not in app_state.casino.state.tables:
            raise DomainError("unknown_table", f"no table {report.table_id}", 404)
        GLASS_TO_GLASS.labels(report.table_id).observe(report.glass_to_glass_ms / 1000)
        return Response(status_code=204)

    return r
