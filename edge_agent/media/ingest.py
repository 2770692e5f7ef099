"""SRT ingest: a libsrt listener per table (edge_agent.media.srt) relays the feed to a loopback
UDP socket, which PyAV demuxes through a file-like reader. A silence longer than the feed timeout ends the
read (EOF), which is how the transcoder learns the feed is down."""
from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from edge_agent.media.srt import SrtListener

log = structlog.get_logger(__name__)


class UdpFeed(io.RawIOBase):
    """Datagrams as a byte stream for `av.open`; EOF after `timeout_s` of silence."""

    def __init__(self, sock: socket.socket, first: bytes, timeout_s: float) -> None:
        self._sock, self._pending, self._timeout = sock, first, timeout_s
        self.stalled = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._pending:
            if self.stalled:
                return 0
            self._sock.settimeout(self._timeout)
            try:
                self._pending = self._sock.recv(65536)
            except (TimeoutError, OSError):
                self.stalled = True
                return 0
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


# The MPEG-TS demuxer runs every H.264/HEVC stream through libavformat's parser, which finds the
# end of a picture only when the next picture starts: every picture waited one frame interval
# (40 ms at 25 fps) in the demuxer although its PES had fully arrived (measured, 2026-12-01:
# last TS packet of a picture at the edge 54 ms after capture, demuxed at 95 ms). With `noparse`
# a PES (one access unit: what encoders mux into MPEG-TS) is handed on when it is complete.
# Audio PES carry several frames: PesDecoder splits them with the codec's own parser.
DEMUX_OPTIONS = {"probesize": "65536", "analyzeduration": "300000", "fflags": "nobuffer+noparse"}


class PesDecoder:
    """Decodes packets of a `noparse` demux: video PES as they are, audio split into frames."""

    def decode(self, packet: Any) -> list[Any]:
        stream = packet.stream
        if stream.type == "video":
            return list(packet.decode())
        ctx = stream.codec_context
        frames: list[Any] = []
        for frame_packet in ctx.parse(bytes(packet)):
            frames.extend(ctx.decode(frame_packet))
        return frames


def wait_for_data(sock: socket.socket, listener: SrtListener, poll_s: float,
                  should_stop: Callable[[], bool]) -> bytes | None:
    """Block until the first datagram of a (new) feed arrives; None if asked to stop."""
    while not should_stop():
        listener.ensure_running()
        sock.settimeout(poll_s)
        try:
            return sock.recv(65536)
        except TimeoutError:
            continue
    return None


def bind_udp() -> tuple[socket.socket, int]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def now_ms() -> int:
    return int(time.time() * 1000)
