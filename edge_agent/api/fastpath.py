"""`POST /v1/bets` served before the framework stack.

FastAPI's middleware, routing and dependency machinery cost ~300 µs a request, more than the
bet itself; this ASGI layer answers the one hot route directly with the same handler
(`http_bet`) the documented FastAPI route uses, and passes everything else through.
"""
from __future__ import annotations

from typing import Any

import orjson

from edge_agent.api.auth import bearer
from edge_agent.api.errors import error_response, is_json_type
from edge_agent.domain.errors import DomainError


async def http_bet(app_state: Any, authorization: str | None, idem_key: str | None, body: bytes,
                   content_type: str | None = None) -> tuple[int, Any]:
    """The bet route's logic: (status, JSON body). Raises DomainError on refusal."""
    casino = app_state.casino
    if not is_json_type(content_type):
        raise DomainError("unsupported_media_type", "the request body must be application/json", 415)
    p = app_state.auth.player(bearer(authorization))
    psn = casino.ensure_player(p.sub)
    try:
        req = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise DomainError("malformed_json", "body is not valid JSON", 400) from None
    if not isinstance(req, dict):
        raise DomainError("invalid_request", "body must be a JSON object", 422)
    if idem_key is not None:
        if not 1 <= len(idem_key) <= 128:
            raise DomainError("invalid_request", "Idempotency-Key must be 1..128 characters", 422)
        return await casino.betting.bet_idempotent(psn, idem_key, body, req)
    receipt = await casino.betting.bet(psn, req.get("table_id"), req.get("spot"), req.get("amount"),
                               rules_version=req.get("rules_version"), player_seed=req.get("player_seed", ""))
    return 201, receipt


class BetFastPath:
    def __init__(self, app: Any, app_state: Any, max_body: int) -> None:
        self.app = app
        self.state = app_state
        self.max_body = max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/bets" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        auth = idem = origin = ctype = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value.decode("latin-1")
            elif name == b"content-type":
                ctype = value.decode("latin-1")
            elif name == b"idempotency-key":
                idem = value.decode("latin-1")
            elif name == b"origin":
                origin = value
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                resp = error_response(413, "body_too_large", f"request body over {self.max_body} bytes")
                await self._send(send, resp.status_code, resp.body, origin)
                return
            chunks.append(chunk)
            more = msg.get("more_body", False)
        try:
            status, payload = await http_bet(self.state, auth, idem, b"".join(chunks), ctype)
            await self._send(send, status, orjson.dumps(payload), origin)
        except DomainError as err:
            resp = error_response(err.status, err.code, err.message, details=err.details or None)
            await self._send(send, resp.status_code, resp.body, origin)

    @staticmethod
    async def _send(send: Any, status: int, body: bytes, origin: bytes | None) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if origin is not None:
            headers.append((b"access-control-allow-origin", b"*"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
