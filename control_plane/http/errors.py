"""Machine-readable errors: every error, 404, 405, 415, 422 and 500 included, is
`{"error": {"code", "message"}}`."""
from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger("control_plane.http")

ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string", "description": "stable machine-readable code"}, "message": {"type": "string"}}}},
}
_DESCRIPTIONS = {
    400: "malformed_json", 401: "unauthorized, invalid_token, bad_signature",
    403: "forbidden, bootstrap_closed", 404: "not_found and the route's own codes", 409: "state conflicts",
    413: "body_too_large", 415: "unsupported_media_type", 422: "invalid_request, ttl_too_long and domain refusals",
    503: "no_healthy_edge",
}
# Declared on every route (routing, validation and content type apply to all of them).
COMMON = (400, 401, 403, 404, 409, 415, 422)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def envelope(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, all with the envelope."""
    return {c: {"description": _DESCRIPTIONS.get(c, "error"), "content": {"application/json": {"schema": ERROR_SCHEMA}}}
            for c in codes}


def is_json_type(content_type: str | None) -> bool:
    if content_type is None:
        return True
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


class JsonOnly:
    """ASGI middleware: 415 for a request body declared as anything but JSON."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            ctype = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"content-type"), None)
            if not is_json_type(ctype):
                resp = JSONResponse(envelope("unsupported_media_type", "the request body must be application/json"),
                                    status_code=415)
                await resp(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(envelope(exc.code, exc.message), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errs):
            return JSONResponse(envelope("malformed_json", "body is not valid JSON"), status_code=400)
        return JSONResponse(envelope("invalid_request", str(errs[:3])[:2000]), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden",
                413: "body_too_large", 415: "unsupported_media_type"}.get(exc.status_code, "http_error")
        return JSONResponse(envelope(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        # Should never happen; when it does, the caller still gets the envelope (and the log the stack).
        log.error("unhandled error", exc_info=exc)
        return JSONResponse(envelope("internal_error", "internal error"), status_code=500)
