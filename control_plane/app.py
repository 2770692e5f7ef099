"""FastAPI app factory."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from control_plane import errors
from control_plane.api import router
from control_plane.config import ControlPlaneConfig

if TYPE_CHECKING:
    from control_plane.runtime import ControlPlane


def build_app(cp: ControlPlane) -> FastAPI:
    """The HTTP app of an existing runtime (its lifecycle is the caller's)."""
    app = FastAPI(title="Live-casino control plane", version="1")
    app.state.cp = cp
    errors.install(app)
    app.add_middleware(CORSMiddleware, allow_origins=cp.config.http.cors_origins, allow_methods=["*"],
                       allow_headers=["*"], expose_headers=["Location", "Retry-After"])
    app.include_router(router)
    return app


def create_app(config: ControlPlaneConfig) -> FastAPI:
    """A self-contained app: the runtime starts and stops with the ASGI lifespan (uvicorn)."""
    from control_plane.runtime import ControlPlane

    cp = ControlPlane(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await cp.start()
        try:
            yield
        finally:
            await cp.stop()
            cp.close_adapters()

    cp.app.router.lifespan_context = lifespan
    return cp.app
