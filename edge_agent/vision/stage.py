"""The vision stage of one table: decodes the feed (one rung, as the ladder encoded it) on its own
thread, and while a reveal is expected reads the slots that reveal fills.

A reveal is decided on what stays on the table, never on a single picture: the same complete
reading on `MATCH_FRAMES` consecutive pictures settles a match, the same complete *different*
reading on `MISMATCH_FRAMES` pictures a mismatch, and nothing complete by the deadline is an
unreadable reveal. The latency reported is from the capture time (stamped by the studio camera
into the picture) of the first picture of the deciding run to the moment of the decision.
"""
from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
import structlog

from edge_agent.evidence.rtp import access_unit
from edge_agent.media.timestamp import read_capture_ts
from edge_agent.vision.reader import TableReader

log = structlog.get_logger(__name__)
MATCH_FRAMES = 2
MISMATCH_FRAMES = 5


@dataclass
class Verdict:
    result: str  # match | mismatch | unreadable
    expected: dict[str, Any]
    seen: dict[str, Any]
    latency_ms: int | None = None
    capture_ts: int | None = None


@dataclass
class _Expect:
    expected: dict[str, Any]
    deadline: float
    done: Callable[[Verdict], None]
    run: list[Any] = field(default_factory=list)  # (reading, capture_ts) of the current run
    last: dict[str, Any] = field(default_factory=dict)


class TableVision:
    def __init__(self, table_id: str, game: str, width: int, height: int) -> None:
        self.table_id, self.game = table_id, game
        self.reader = TableReader(game, width, height)
        self._q: queue.Queue[tuple[bool, list[bytes]] | None] = queue.Queue(maxsize=100)
        self._expects: list[_Expect] = []
        self._lock = threading.Lock()
        self.dropped = 0
        self.frames = 0
        self.cpu_s = 0.0  # CPU time of the vision thread (decode + reading), for the benchmarks
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"vision-{table_id}")
        self._thread.start()

    # -- the media tap (event loop) ---------------------------------------------------------------
    def on_frame(self, key: bool, payloads: list[bytes]) -> None:
        try:
            self._q.put_nowait((key, payloads))
        except queue.Full:
            self.dropped += 1

    def stop(self) -> None:
        self._q.put(None)
        self._thread.join(2)

    # -- expectations --------------------------------------------------------------------------
    def expect(self, expected: dict[str, Any], timeout_s: float) -> asyncio.Future[Verdict]:
        """The verdict on a reveal of `expected` (slot -> card code or number) within timeout_s."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Verdict] = loop.create_future()

        def done(v: Verdict) -> None:
            loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(v))

        with self._lock:
            self._expects.append(_Expect(dict(expected), time.monotonic() + timeout_s, done))
        return fut

    def check(self, expected: dict[str, Any], timeout_s: float, done: Callable[[Verdict], None]) -> None:
        """Thread-side form of `expect` (benchmarks): `done` runs on the vision thread."""
        with self._lock:
            self._expects.append(_Expect(dict(expected), time.monotonic() + timeout_s, done))

    # -- the vision thread ---------------------------------------------------------------------
    def _run(self) -> None:
        decoder = av.CodecContext.create("h264", "r")
        while True:
            try:
                item = self._q.get(timeout=0.1)
            except queue.Empty:
                self._expire()  # no picture at all: reveals still time out
                continue
            if item is None:
                return
            _key, payloads = item
            try:
                frames = decoder.decode(av.Packet(access_unit(payloads)))
            except (av.FFmpegError, ValueError):
                continue
            for frame in frames:
                self.frames += 1
                self.cpu_s = time.thread_time()
                with self._lock:
                    pending = list(self._expects)
                if pending:
                    self._look(frame, pending)
            self._expire()
            self.cpu_s = time.thread_time()

    def _look(self, frame: av.VideoFrame, pending: list[_Expect]) -> None:
        yuv = frame.to_ndarray()
        captured = read_capture_ts(yuv[: frame.height])
        slots = sorted({s for e in pending for s in e.expected})
        readings = self.reader.read(yuv, slots)
        for e in pending:
            seen = {s: readings[s].value for s in e.expected}
            e.last = seen
            if any(v is None for v in seen.values()):
                e.run.clear()
                continue
            if e.run and e.run[-1][0] != seen:
                e.run.clear()
            e.run.append((seen, captured))
            want = MATCH_FRAMES if seen == e.expected else MISMATCH_FRAMES
            if len(e.run) >= want:
                first_capture = e.run[0][1]
                now = int(time.time() * 1000)
                self._finish(e, Verdict("match" if seen == e.expected else "mismatch", e.expected, seen,
                                        None if first_capture is None else now - first_capture, first_capture))

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [e for e in self._expects if e.deadline < now]
        for e in late:
            self._finish(e, Verdict("unreadable", e.expected, e.last))

    def _finish(self, e: _Expect, v: Verdict) -> None:
        with self._lock:
            if e not in self._expects:
                return
            self._expects.remove(e)
        e.done(v)
