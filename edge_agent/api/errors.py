"""The error envelope: every refusal is `{"error": {"code", "message"[, "details"]}}`."""
from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from edge_agent import metrics as M
from edge_agent.domain.errors import DomainError


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   details: dict[str, Any] | None = None) -> Response:
    M.ERRORS.labels(code=code).inc()
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return Response(orjson.dumps({"error": body}), status_code=status, media_type="application/json",
                    headers=headers)


ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string", "description": "stable machine-readable code"},
        "message": {"type": "string"}, "details": {"type": "object"}}, "required": ["code", "message"]}},
}


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> Response:
        return error_response(exc.status, exc.code, exc.message, details=exc.details or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        errs = exc.errors()
        code = "malformed_json" if any(e.get("type") == "json_invalid" for e in errs) else "invalid_request"
        return error_response(400 if code == "malformed_json" else 422, code, "request does not validate",
                              details={"errors": [{"loc": list(map(str, e.get("loc", ()))), "msg": e.get("msg")}
                                                  for e in errs]})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden",
                413: "body_too_large"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))
