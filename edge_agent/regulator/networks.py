"""`regulator_access.allowed_cidrs`: the regulator routes answer only from the listed networks.

An ASGI middleware in front of every `/regulator` path (API, HTML view, login), checked on the
connection's peer address before any token is read: a request from elsewhere gets 403
`network_not_allowed` and is not journaled (it never reached the regulator service).
"""
from __future__ import annotations

from typing import Any

import orjson

from edge_agent.config import RegulatorAccessConfig

PREFIX = "/regulator"


class RegulatorNetworks:
    def __init__(self, app: Any, access: RegulatorAccessConfig) -> None:
        self.app, self.access = app, access

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("path", "").startswith(PREFIX):
            client = scope.get("client")
            if not self.access.allows(client[0] if client else None):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 4403})
                    return
                body = orjson.dumps({"error": {"code": "network_not_allowed",
                                               "message": "regulator access is not allowed from this network"}})
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
