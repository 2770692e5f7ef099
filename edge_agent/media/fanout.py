"""Encode once, fan out: every rung's frames arrive once, already packetized; each viewer costs
only an RTP header (its own SSRC, sequence, timestamp offset), SRTP and a sendto.

A new viewer starts at once from the rung's GOP cache (the last keyframe and the frames after
it). A viewer changes rung only at a keyframe of the target rung; rungs have aligned keyframes,
so the picture never breaks.
"""
from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class EncodedFrame:
    rung: int
    pts: int  # 90 kHz media clock shared by all rungs
    key: bool
    payloads: list[bytes]
    size: int


class VideoSink(Protocol):
    """What the fan-out needs of a viewer."""

    rung: int  # rung currently received
    target: int  # rung the ABR wants
    awaiting_key: bool  # skip frames until a keyframe (new viewer, rung switch, PLI)
    late_frames: int  # live frames that left more than `late_after_s` after reaching the fan-out

    def send_frame(self, frame: EncodedFrame) -> None: ...


class RungHub:
    def __init__(self, index: int) -> None:
        self.index = index
        self.gop: list[EncodedFrame] = []
        self.sinks: set[VideoSink] = set()

    def push(self, frame: EncodedFrame) -> None:
        if frame.key:
            self.gop = [frame]
        elif self.gop:
            self.gop.append(frame)


class TableFanout:
    """The per-table dispatcher of encoded frames to viewers."""

    def __init__(self, rungs: int, on_switch: Callable[[int, int], None] | None = None,
                 late_after_s: float = 0.04) -> None:
        self.late_after_s = late_after_s
        self.hubs = [RungHub(i) for i in range(rungs)]
        self.switches: list[tuple[int, int]] = []  # (from, to), last few, for tests
        self._on_switch = on_switch

    def add(self, sink: VideoSink) -> None:
        hub = self.hubs[sink.rung]
        hub.sinks.add(sink)
        # Start at once from the cached GOP, if any (else at the next keyframe).
        if hub.gop:
            sink.awaiting_key = False
            for f in hub.gop:
                sink.send_frame(f)
        else:
            sink.awaiting_key = True

    def remove(self, sink: VideoSink) -> None:
        for hub in self.hubs:
            hub.sinks.discard(sink)

    def clear(self) -> None:
        """Feed down: a later feed starts with a new GOP."""
        for hub in self.hubs:
            hub.gop = []

    def push(self, frame: EncodedFrame) -> None:
        hub = self.hubs[frame.rung]
        hub.push(frame)
        clock = time.monotonic
        deadline = clock() + self.late_after_s
        moving: list[VideoSink] = []
        broken: list[VideoSink] = []
        for sink in hub.sinks:
            if frame.key and sink.target != sink.rung:
                moving.append(sink)
                continue
            if sink.awaiting_key:
                if not frame.key:
                    continue
                sink.awaiting_key = False
            try:
                sink.send_frame(frame)
                if clock() > deadline:  # the loop over viewers itself ran late
                    sink.late_frames += 1
            except Exception:  # noqa: BLE001 - one dead viewer (closed socket, SRTP error) must not stall the rest
                broken.append(sink)
        for sink in moving:
            self._switch(sink, frame)
        for sink in broken:
            log.warning("fanout.viewer_dropped", rung=frame.rung)
            self.remove(sink)

    def _switch(self, sink: VideoSink, at: EncodedFrame) -> None:
        old, new = sink.rung, sink.target
        self.hubs[old].sinks.discard(sink)
        target = self.hubs[new]
        target.sinks.add(sink)
        sink.rung = new
        self.switches.append((old, new))
        del self.switches[:-100]
        if self._on_switch is not None:
            self._on_switch(old, new)
        gop = target.gop
        if gop and gop[0].key and gop[0].pts == at.pts:
            # The target rung already delivered this instant's keyframe: send it now.
            sink.awaiting_key = False
            for f in gop:
                sink.send_frame(f)
        else:
            # The target rung's keyframe for this instant comes next.
            sink.awaiting_key = True


_HDR = struct.Struct("!BBHII")


@dataclass(slots=True)
class RtpStream:
    """Per-viewer RTP numbering over shared payloads."""

    ssrc: int
    payload_type: int
    seq: int
    ts_offset: int
    packets: int = 0
    octets: int = 0
    last_ts: int = 0
    history: dict[int, bytes] = field(default_factory=dict)
    ext: bytes = b""  # RTP header extension block (RFC 8285) in every packet, or b""

    def packets_for(self, payloads: list[bytes], pts: int) -> list[bytes]:
        ts = (pts + self.ts_offset) & 0xFFFFFFFF
        out = []
        last = len(payloads) - 1
        pack, pt, ssrc, ext = _HDR.pack, self.payload_type, self.ssrc, self.ext
        first = 0x90 if ext else 0x80
        seq = self.seq
        for i, p in enumerate(payloads):
            out.append(pack(first, (0x80 | pt) if i == last else pt, seq, ts, ssrc) + ext + p)
            seq = (seq + 1) & 0xFFFF
            self.octets += len(p)
        self.seq = seq
        self.packets += len(payloads)
        self.last_ts = ts
        return out
