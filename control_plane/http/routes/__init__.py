"""HTTP API v1, one router per concept. Sync handlers: FastAPI runs them in its thread pool,
next to the services' database calls."""
from fastapi import APIRouter

from control_plane.http.routes import audit, edges, kyc, money, ops, tokens

ROUTERS: tuple[APIRouter, ...] = (ops.router, tokens.router, edges.router, kyc.router, money.router, audit.router)
