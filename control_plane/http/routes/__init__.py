"""HTTP API v1, one router per concept. Sync handlers: FastAPI runs them in its thread pool,
next to the services' database calls."""
from fastapi import APIRouter

from control_plane.http.routes import audit, backoffice, edges, kyc, money, operator_log, ops, tables, tokens

ROUTERS: tuple[APIRouter, ...] = (ops.router, tokens.router, edges.router, kyc.router, money.router, audit.router,
                                  tables.router, operator_log.router, backoffice.router)
