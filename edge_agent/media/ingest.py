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


TS_PACKET = 188
# A video PES longer than 64 KB (an encoder's IDR picture, typically) cannot carry its length
# (PES_packet_length is 16 bits) and is muxed "unbounded": the demuxer learns that it ended only
# when the next PES starts on its PID, one frame interval later (40 ms at 25 fps: every IDR
# reached the ladder ~45 ms behind the pictures around it; measured 2026-12-01). Once the feed
# goes quiet after such a PES, UdpFeed ends it itself with an empty PES start on that PID: a
# muxer's flush (a message shorter than the longest seen: whole 1,316-byte messages until the
# flush at the end of a packet) then 2 ms of silence, or 15 ms of silence whatever came last.
QUIET_AFTER_FLUSH_S = 0.002
QUIET_S = 0.015


def empty_pes_start(pid: int, cc: int, stream_id: int) -> bytes:
    """One TS packet on `pid` starting a PES with a bare header (no PTS, no payload): it ends the
    PES before it; the demuxer emits nothing for it (no data) when the next PES starts."""
    pes = bytes([0, 0, 1, stream_id, 0, 0, 0x80, 0x00, 0x00])
    af_len = TS_PACKET - 4 - 1 - len(pes)
    header = bytes([0x47, 0x40 | (pid >> 8), pid & 0xFF, 0x30 | (cc & 0x0F)])  # PUSI; adaptation + payload
    return header + bytes([af_len, 0x00]) + b"\xff" * (af_len - 1) + pes


class PesTerminator:
    """Watches the TS packets of a feed for an open unbounded video PES and ends it on request.

    Continuity counters of a PID it inserted a packet on are shifted by one from then on, so the
    demuxer sees an unbroken stream. Datagrams that are not whole TS packets switch insertion off
    for the feed (the data passes on unchanged, bar the counter shift), and so does a PES that
    goes on after it was ended (a sender that pauses inside a picture): that picture is damaged
    once, then the feed is demuxed as before."""

    def __init__(self) -> None:
        self.enabled = True
        self.open_pid: int | None = None
        self._ended: int | None = None  # PID ended last: its next payload must start a PES
        self._stream_id = 0xE0
        self._last_cc: dict[int, int] = {}
        self._shift: dict[int, int] = {}

    def feed(self, data: bytes) -> bytes:
        if len(data) % TS_PACKET:
            self.enabled = False
            self.open_pid = None
        shift = self._shift
        out = bytearray(data) if shift else None
        for i in range(0, len(data) - TS_PACKET + 1, TS_PACKET):
            if data[i] != 0x47:
                self.enabled = False
                self.open_pid = None
                continue
            b1, b3 = data[i + 1], data[i + 3]
            pid = ((b1 & 0x1F) << 8) | data[i + 2]
            if not b3 & 0x10:
                continue  # no payload: the counter does not move
            cc = b3 & 0x0F
            if out is not None and pid in shift:
                cc = (cc + shift[pid]) & 0x0F
                out[i + 3] = (b3 & 0xF0) | cc
            self._last_cc[pid] = cc
            if pid == self._ended:
                self._ended = None
                if not b1 & 0x40:
                    self.enabled = False
                    self.open_pid = None
                    log.warning("ingest.pes_went_on", pid=pid)
            if b1 & 0x40:  # a PES starts here
                start = i + 4 + (1 + data[i + 4] if b3 & 0x20 else 0)
                if start + 6 <= i + TS_PACKET and data[start:start + 3] == b"\x00\x00\x01":
                    sid = data[start + 3]
                    if 0xE0 <= sid <= 0xEF and data[start + 4] == 0 and data[start + 5] == 0 and self.enabled:
                        self.open_pid, self._stream_id = pid, sid
                    elif pid == self.open_pid:
                        self.open_pid = None
                elif pid == self.open_pid:
                    self.open_pid = None
        return bytes(out) if out is not None else data

    def terminate(self) -> bytes | None:
        """The packet that ends the open unbounded video PES, or None."""
        pid = self.open_pid
        if pid is None or pid not in self._last_cc or not self.enabled:
            return None
        self.open_pid = None
        self._ended = pid
        cc = (self._last_cc[pid] + 1) & 0x0F
        self._last_cc[pid] = cc
        self._shift[pid] = (self._shift.get(pid, 0) + 1) & 0x0F
        return empty_pes_start(pid, cc, self._stream_id)


class UdpFeed(io.RawIOBase):
    """Datagrams as a byte stream for `av.open`; EOF after `timeout_s` of silence. An unbounded
    video PES is ended as soon as the feed goes quiet after it (PesTerminator)."""

    def __init__(self, sock: socket.socket, first: bytes, timeout_s: float, end_unbounded: bool = True) -> None:
        self._sock, self._timeout = sock, timeout_s
        self._ts = PesTerminator() if end_unbounded else None
        self._longest = len(first)
        self._last_len = len(first)
        self._pending = self._ts.feed(first) if self._ts is not None else first
        self.stalled = False
        self.terminated = 0  # unbounded PES ended here (tests, diagnostics)

    def readable(self) -> bool:
        return True

    def _recv(self, timeout: float) -> bytes:
        self._sock.settimeout(timeout)
        data = self._sock.recv(65536)
        self._longest = max(self._longest, len(data))
        self._last_len = len(data)
        return self._ts.feed(data) if self._ts is not None else data

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._pending:
            if self.stalled:
                return 0
            try:
                ts = self._ts
                if ts is not None and ts.open_pid is not None:
                    quiet = QUIET_AFTER_FLUSH_S if self._last_len < self._longest else QUIET_S
                    try:
                        self._pending = self._recv(quiet)
                    except TimeoutError:
                        end = ts.terminate()
                        if end is not None:
                            self.terminated += 1
                            self._pending = end
                if not self._pending:
                    self._pending = self._recv(self._timeout)
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
