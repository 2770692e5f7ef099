"""Small routes for the player web client (edge_agent/web/static, mounted at /play)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

_DOCS = Path(__file__).resolve().parents[2] / "docs"


def web_router(app_state: Any) -> APIRouter:
    r = APIRouter(tags=["web"])

    @r.get("/v1/docs/fairness", summary="How rounds are provably fair (docs/FAIRNESS.md, Markdown)")
    async def fairness_doc() -> Response:
        path = _DOCS / "FAIRNESS.md"
        if not path.is_file():
            return Response('{"error": {"code": "not_found", "message": "FAIRNESS.md is not installed"}}',
                            status_code=404, media_type="application/json")
        return Response(path.read_text(encoding="utf-8"), media_type="text/plain; charset=utf-8")

    return r
