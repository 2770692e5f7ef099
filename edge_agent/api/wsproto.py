"""The player WebSocket's server protocol: uvicorn's sans-I/O protocol, with two changes.

1. **Text frames straight to the app.** Through ASGI every message a player sends is parsed by
   websockets' generator parser, queued for the app, read back by the app's task (one task
   wake-up), and pauses and resumes reading the socket (two epoll changes). At a table of 5,000
   players that is a large share of what a decision costs the event loop. Once the app has
   attached a handler (`deliver_text`), `PlayerProtocol` splits the byte stream into whole frames
   itself and hands each plain text message (one unfragmented, uncompressed, masked frame) to the
   handler synchronously. Every other frame (ping, pong, close, binary, fragments, compressed,
   too large, bad UTF-8) goes whole to uvicorn's own path, which handles it exactly as before:
   websockets' parser only ever sees whole frames, so it is always at a frame boundary when a
   plain frame bypasses it. A plain frame also takes uvicorn's path while a message is queued for
   the app, so messages reach the app in the order they were sent.
2. **Keepalive pings to silent peers only.** uvicorn pings every socket every `ws_ping_interval`
   even while the player is sending (thousands of pings and pongs a minute at one table). A peer
   heard within the interval is alive; its ping is put off until it has been silent that long.

Both lean on internals of uvicorn's `WebSocketsSansIOProtocol` and of websockets'
`ServerProtocol`; `check()` verifies them at import, and the versions are pinned in
pyproject.toml (tests/edge/test_wsproto.py runs both paths against the pinned versions).
"""
from __future__ import annotations

import inspect
import struct
from collections.abc import Callable
from typing import Any

import structlog
import uvicorn
import websockets
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.utils import apply_mask

log = structlog.get_logger(__name__)

TESTED = {"uvicorn": "0.54.0", "websockets": "17.4"}

_OPEN = State.OPEN
_HEAD = struct.Struct("!H")
_LONG = struct.Struct("!Q")


class CompatError(RuntimeError):
    pass


def check() -> None:
    """Fail loudly at import if an internal this module uses has moved."""

    def fail(what: str) -> None:
        raise CompatError(f"uvicorn {uvicorn.__version__} / websockets {websockets.__version__}: {what} "
                          f"(tested with {TESTED}); see edge_agent/api/wsproto.py")

    for name in ("data_received", "send_keepalive_ping", "send_receive_event_to_app", "handle_connect"):
        if not callable(getattr(WebSocketsSansIOProtocol, name, None)):
            fail(f"WebSocketsSansIOProtocol lacks {name}")
    init = set(WebSocketsSansIOProtocol.__init__.__code__.co_names)
    for name in ("conn", "queue", "close_sent", "ping_interval", "ping_timer", "loop", "transport"):
        if name not in init:
            fail(f"WebSocketsSansIOProtocol no longer sets {name}")
    if "ping_timer" not in WebSocketsSansIOProtocol.send_keepalive_ping.__code__.co_names:
        fail("send_keepalive_ping no longer clears ping_timer")
    conn = ServerProtocol()
    for name in ("state", "current_size", "max_message_size"):
        if not hasattr(conn, name):
            fail(f"ServerProtocol lacks {name}")
    if len(inspect.signature(apply_mask).parameters) != 2 or not hasattr(conn.parser, "gi_yieldfrom"):
        fail("apply_mask(data, mask) or the generator parser changed")


check()

TextHandler = Callable[[str], None]


class PlayerProtocol(WebSocketsSansIOProtocol):
    """uvicorn's protocol with plain text frames delivered to `on_text` (see module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_text: TextHandler | None = None
        self.heard_at = self.loop.time()  # last bytes from the peer, for keepalive
        self._buf = bytearray()           # a partial frame (only while on_text is set)
        self._framing = False             # this protocol splits the stream into frames

    # --- receiving ------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.heard_at = self.loop.time()
        if not self._framing:
            if self.on_text is None or not self._at_boundary():
                super().data_received(data)
                return
            self._framing = True
        buf = self._buf
        buf += data
        n = len(buf)
        pos = 0
        conn = self.conn
        limit = conn.max_message_size
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, head = _HEAD.unpack_from(buf, pos + 2)[0], 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = _LONG.unpack_from(buf, pos + 2)[0], 10
            if limit is not None and length > limit:
                # websockets refuses it (1009) from its header: hand it everything from here on.
                self._stop_framing(pos)
                return
            end = pos + head + 4 + length if b1 & 0x80 else pos + head + length
            if n < end:
                break
            frame = bytes(buf[pos:end])
            pos = end
            text = None
            if (b0 == 0x81 and b1 & 0x80 and self.on_text is not None and not self.close_sent
                    and conn.state is _OPEN and conn.current_size is None and self.queue.empty()):
                try:
                    text = apply_mask(frame[head + 4:], frame[head:head + 4]).decode()
                except UnicodeDecodeError:
                    text = None  # websockets closes with 1007
            if text is None:
                super().data_received(frame)
                if conn.state is not _OPEN or self.close_sent:
                    self._stop_framing(pos)
                    return
                continue
            try:
                self.on_text(text)
            except Exception:
                log.exception("player message handler failed")
        del buf[:pos]

    def _at_boundary(self) -> bool:
        """websockets' parser is waiting for a frame's first byte with nothing buffered."""
        conn = self.conn
        if conn.state is not _OPEN or conn.reader.buffer or conn.current_size is not None:
            return False
        gen = conn.parser  # ServerProtocol.parse -> Protocol.parse -> StreamReader.at_eof
        while (inner := getattr(gen, "gi_yieldfrom", None)) is not None:
            gen = inner
        return getattr(getattr(gen, "gi_code", None), "co_name", None) == "at_eof"

    def _stop_framing(self, pos: int) -> None:
        """Give the rest of the stream (from `pos`) back to uvicorn's path, for good."""
        rest = bytes(self._buf[pos:])
        self._buf.clear()
        self._framing = False
        self.on_text = None
        if rest:
            super().data_received(rest)

    # --- keepalive ------------------------------------------------------------------------------

    def send_keepalive_ping(self) -> None:
        quiet = self.loop.time() - self.heard_at
        interval = self.ping_interval or 0.0
        if quiet < interval and not self.close_sent:
            self.ping_timer = self.loop.call_later(interval - quiet, self.send_keepalive_ping)
            return
        super().send_keepalive_ping()


def deliver_text(proto: Any, handler: TextHandler | None) -> bool:
    """Have `proto` (the socket's server protocol, if it is a PlayerProtocol) hand plain text
    messages to `handler` from now on (None: stop). False: this socket cannot; read through ASGI."""
    if not isinstance(proto, PlayerProtocol):
        return False
    proto.on_text = handler
    return True
