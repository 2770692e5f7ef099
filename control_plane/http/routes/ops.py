"""Liveness and Prometheus metrics."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from control_plane.http.deps import services

router = APIRouter()


@router.get("/healthz")
def healthz(request: Request) -> dict[str, bool]:
    return {"ok": True, "nats": services(request).nats_connected()}


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(generate_latest(services(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)
