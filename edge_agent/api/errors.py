"""The error envelope: every refusal is `{"error": {"code", "message"[, "details"]}}`."""
from __future__ import annotations

from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from edge_agent import metrics as M
from edge_agent.domain.errors import DomainError

log = structlog.get_logger("api")


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
                413: "body_too_large", 415: "unsupported_media_type"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> Response:
        # Should never happen; when it does, the caller still gets the envelope (and the log the stack).
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "internal error")


JSON_TYPES = ("application/json",)


def is_json_type(content_type: str | None) -> bool:
    """No Content-Type counts as JSON (curl -d, old clients); a declared one must be JSON."""
    if content_type is None:
        return True
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime in JSON_TYPES or (mime.startswith("application/") and mime.endswith("+json"))


class JsonOnly:
    """ASGI middleware: 415 for a request body declared as anything but JSON on the JSON API
    (`prefix`), except the routes there that take other media (KYC documents). WHEP (SDP) and
    the regulator's login form live outside it."""

    def __init__(self, app: Any, prefix: str, exempt_prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.prefix = prefix
        self.exempt = exempt_prefixes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH") \
                and scope["path"].startswith(self.prefix) and not scope["path"].startswith(self.exempt):
            ctype = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"content-type"), None)
            if not is_json_type(ctype):
                resp = error_response(415, "unsupported_media_type", "the request body must be application/json")
                await resp(scope, receive, send)
                return
        await self.app(scope, receive, send)
