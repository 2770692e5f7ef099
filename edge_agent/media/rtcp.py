"""RTCP sender reports for all viewers from one timer, instead of aiortc's task per sender.

aiortc runs a loop per RTCRtpSender that wakes every 0.5-1.5 s to send SR + SDES: with 1,000
viewers that is ~1,000 timer wake-ups and task switches a second. Here one task per event loop
sends each registered sender's report when due. The interval is 2 s on average, randomized over
[0.5, 1.5] x as RFC 3550 section 6.3.1 asks (its recommended minimum is 5 s; the "reduced
minimum" for 800 kbit/s is 0.45 s). Receivers' RTT (LSR/DLSR) and A/V sync work with any interval;
the first report goes out within a second of DTLS so players can sync early.

aiortc's own loop is parked, not removed (`park_sender_rtcp`): it still sends RTCP BYE when the
sender stops, as before.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)

SR_INTERVAL_S = 2.0
FIRST_SR_S = 0.5
TICK_S = 0.1


class Reporter(Protocol):
    closed: bool

    def report(self) -> None: ...


class SenderReports:
    """A due-time heap of reporters and the one task that serves it."""

    def __init__(self, interval_s: float = SR_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._heap: list[tuple[float, int, Reporter]] = []
        self._seq = itertools.count()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, reporter: Reporter) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + FIRST_SR_S * (0.5 + random.random())
        heapq.heappush(self._heap, (due, next(self._seq), reporter))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        heap = self._heap
        while heap:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            while heap and heap[0][0] <= now:
                _, _, r = heapq.heappop(heap)
                if r.closed:
                    continue  # dropped here: no removal bookkeeping elsewhere
                try:
                    r.report()
                except Exception:
                    log.debug("rtcp.report_failed", exc_info=True)
                heapq.heappush(heap, (now + self.interval_s * (0.5 + random.random()), next(self._seq), r))


_by_loop: dict[int, SenderReports] = {}


def scheduler() -> SenderReports:
    """The SenderReports of the running event loop (one per process in practice)."""
    loop = asyncio.get_running_loop()
    s = _by_loop.get(id(loop))
    if s is None or (s._task is not None and s._task.get_loop() is not loop):
        s = _by_loop[id(loop)] = SenderReports()
    return s


def park_sender_rtcp(sender: Any) -> None:
    """Replace aiortc's periodic SR loop of `sender` (before it starts) with one that only waits
    to be stopped and then sends BYE, as aiortc's does."""

    from aiortc.rtp import RtcpByePacket

    from edge_agent.media.compat import aiortc as compat

    async def parked() -> None:
        compat.rtcp_started(sender).set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        await compat.send_rtcp(sender, [RtcpByePacket(sources=[compat.sender_ssrc(sender)])])
        compat.rtcp_exited(sender).set()

    compat.replace_rtcp_loop(sender, parked)
