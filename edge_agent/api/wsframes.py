"""Writing a player socket's queued text messages as WebSocket frames in one transport write.

Through ASGI every message is one `send` and one socket write; at a table of 5,000 players the
write (a syscall each) is what a broadcast costs. Under `edge-agent serve` (uvicorn's
websockets-sansio protocol) `capture` hands the socket's protocol to the app, and `FrameWriter`
writes whatever is queued for one socket as unmasked text frames in a single write, observing the
protocol's flow control and close state. Frames are sent uncompressed: RFC 7692 allows that when
permessage-deflate was negotiated (RSV1 unset), and uvicorn's own frames (pings, close) are whole
frames too, so they interleave at frame boundaries. Anywhere else (another ws implementation, the
test client) it falls back to one ASGI send per message.

Broadcasts to sockets with nothing queued skip the queue and the per-socket task: the hub hands
them to `FANOUT` (wsfanout.py), which writes them from a worker thread; FrameWriter keeps each
socket's order around that.
"""
from __future__ import annotations

import asyncio
import os
import struct
from typing import Any

from starlette.websockets import WebSocket

from edge_agent.api import wsfanout

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


def frames(texts: list[str]) -> bytes:
    return b"".join([frame(t.encode()) for t in texts])


FANOUT = wsfanout.Broadcaster(frames)


class FrameWriter:
    """Writes one socket's queued texts, and is the socket's `events.DirectSink`: the hub may hand
    a broadcast for it to the fan-out thread (wsfanout.py) when nothing is queued for it. While the
    thread holds the socket (`busy`) every other write to it waits: this writer's, and uvicorn's
    own (pings, close), which go through `_Guard`; then what the kernel did not take goes first."""

    fanout = FANOUT

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.proto = ws.scope.get(SCOPE_KEY)
        self.transport: Any = None
        self.fd = -1
        self.busy = False     # the fan-out thread holds the socket
        self.writing = False  # this writer has texts in hand (waiting for the socket)
        self.done = False     # the socket's writer has stopped: nothing more is written
        self._idle: asyncio.Event | None = None
        self._deferred: list[bytes] = []
        self._dup = -1  # the fan-out threads' fd for this socket (claim), closed by stop()
        self._close_deferred = False
        if self.proto is not None:
            self.transport = self.proto.transport
            sock = self.transport.get_extra_info("socket") if wsfanout.ENABLED else None
            fd = sock.fileno() if sock is not None else -1
            if isinstance(fd, int) and fd >= 0:
                self.fd = fd
                self.proto.transport = _Guard(self.transport, self)

    # --- events.DirectSink --------------------------------------------------------------------

    def claim(self) -> int | None:
        if self.busy or self.writing or self.done or self.fd < 0:
            return None
        p, t = self.proto, self.transport
        if p.close_sent or p.disconnected or not p.writable.is_set() or t.is_closing() or t.get_write_buffer_size():
            return None
        fd = self._dup
        if fd < 0:
            try:
                # One dup() for the socket's life, closed by stop(): the thread writes to it, so a
                # socket closed meanwhile cannot pass its number to a new connection.
                fd = self._dup = os.dup(self.fd)  # the fd is ours while the transport is open (checked above)
            except OSError:
                return None
        self.busy = True
        return fd

    def stop(self) -> None:
        """Nothing more goes to this socket, directly either; its fan-out fd is closed once free."""
        self.done = True
        if not self.busy:
            self._close_dup()

    def _close_dup(self) -> None:
        if self._dup >= 0:
            fd, self._dup = self._dup, -1
            os.close(fd)

    def release(self, rest: bytes) -> None:
        self.busy = False
        if self.done:
            self._close_dup()
        t = self.transport
        if not t.is_closing():
            if rest:
                t.write(rest)
            for d in self._deferred:
                t.write(d)
        self._deferred.clear()
        if self._close_deferred:
            self._close_deferred = False
            self._close_dup()  # else the dup keeps the connection open after the transport's close
            t.close()
        if self._idle is not None:
            self._idle.set()

    # --- the socket's own writer ----------------------------------------------------------------

    def reply(self, payload: bytes) -> bool:
        """Send one reply (JSON) now when nothing else is under way for the socket: through the
        fan-out threads with the others of this loop turn (Broadcaster.reply), or from here; False:
        not now (the caller queues it). The caller checks that nothing is queued for the socket."""
        p = self.proto
        if p is None or self.busy or self.writing or self.done:
            return False
        if p.close_sent or p.disconnected or not p.writable.is_set() or self.transport.is_closing():
            return False
        fd = self.claim() if self.fd >= 0 else None
        if fd is not None:
            self.fanout.reply(self, fd, frame(payload))
        else:
            self.transport.write(frame(payload))
        return True

    async def write(self, texts: list[str]) -> None:
        proto = self.proto
        if proto is None:
            for t in texts:
                await self.ws.send_text(t)
            return
        self.writing = True
        try:
            while self.busy or not proto.writable.is_set():
                if self.busy:
                    if self._idle is None:
                        self._idle = asyncio.Event()
                    self._idle.clear()
                    await self._idle.wait()
                else:
                    await proto.writable.wait()
            if proto.close_sent or proto.disconnected or self.transport.is_closing():
                raise ConnectionError("websocket closed")
            self.transport.write(frames(texts))
        finally:
            self.writing = False


class _Guard:
    """uvicorn's view of the transport: its writes and close wait while the fan-out thread holds
    the socket (see FrameWriter), so that they never land inside a broadcast's bytes."""

    __slots__ = ("_t", "_w")

    def __init__(self, transport: Any, writer: FrameWriter) -> None:
        self._t = transport
        self._w = writer

    def write(self, data: Any) -> None:
        if self._w.busy:
            self._w._deferred.append(bytes(data))
        else:
            self._t.write(data)

    def close(self) -> None:
        if self._w.busy:
            self._w._close_deferred = True
        else:
            self._w._close_dup()
            self._t.close()

    def abort(self) -> None:
        self._w._close_deferred = False
        if not self._w.busy:
            self._w._close_dup()
        self._t.abort()

    def is_closing(self) -> bool:
        return bool(self._t.is_closing() or self._w._close_deferred)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._t, name)
