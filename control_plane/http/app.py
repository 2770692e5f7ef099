"""The FastAPI app over a set of services (the composition root builds both)."""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from control_plane.http import errors
from control_plane.http.deps import Services
from control_plane.http.routes import ROUTERS


def build_app(services: Services) -> FastAPI:
    """The HTTP app of existing services (their lifecycle is the caller's)."""
    app = FastAPI(title="Live-casino control plane", version="1")
    app.state.services = services
    errors.install(app)
    app.add_middleware(errors.JsonOnly)
    app.add_middleware(CORSMiddleware, allow_origins=services.config.http.cors_origins, allow_methods=["*"],
                       allow_headers=["*"], expose_headers=["Location", "Retry-After"])
    for router in ROUTERS:
        app.include_router(router, responses=errors.errors(*errors.COMMON))
    return app
