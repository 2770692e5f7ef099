"""Writing a player socket's queued text messages as WebSocket frames in one transport write.

Through ASGI every message is one `send` and one socket write; at a table of 5,000 players the
write (a syscall each) is what a broadcast costs. Under `edge-agent serve` (uvicorn's
websockets-sansio protocol) `capture` hands the socket's protocol to the app, and `FrameWriter`
writes whatever is queued for one socket as unmasked text frames in a single write, observing the
protocol's flow control and close state. Frames are sent uncompressed: RFC 7692 allows that when
permessage-deflate was negotiated (RSV1 unset), and uvicorn's own frames (pings, close) are whole
frames too, so they interleave at frame boundaries. Anywhere else (another ws implementation, the
test client) it falls back to one ASGI send per message.
"""
from __future__ import annotations

import struct
from typing import Any

from starlette.websockets import WebSocket

SCOPE_KEY = "edge.ws_protocol"


def capture(app: Any) -> Any:
    """Wrap the ASGI app: a WebSocket scope carries its server protocol object when it has the
    parts FrameWriter needs (the transport, the close state and the flow-control event)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            proto = getattr(send, "__self__", None)
            if all(hasattr(proto, a) for a in ("transport", "writable", "close_sent", "disconnected")):
                scope[SCOPE_KEY] = proto
        await app(scope, receive, send)

    return wrapped


def frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 65_536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class FrameWriter:
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.proto = ws.scope.get(SCOPE_KEY)

    async def write(self, texts: list[str]) -> None:
        proto = self.proto
        if proto is None:
            for t in texts:
                await self.ws.send_text(t)
            return
        if not proto.writable.is_set():
            await proto.writable.wait()
        if proto.close_sent or proto.disconnected or proto.transport.is_closing():
            raise ConnectionError("websocket closed")
        proto.transport.write(b"".join([frame(t.encode()) for t in texts]))
