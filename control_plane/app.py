"""The ASGI entry point (`control-plane serve`, uvicorn): a control plane whose runtime starts and
stops with the ASGI lifespan."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from control_plane.config import ControlPlaneConfig
from control_plane.runtime import ControlPlane


def create_app(config: ControlPlaneConfig) -> FastAPI:
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
    cp.app.state.cp = cp  # for an embedding caller (tests register edges on it); routes never read it
    return cp.app
