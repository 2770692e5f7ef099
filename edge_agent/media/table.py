"""One table's media: its transcoder process, its fan-out and its viewers; turns transcoder
messages into feed up/down callbacks (in order) and frames for the viewers."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from edge_agent.media import metrics
from edge_agent.media.config import MediaConfig, TableFeed
from edge_agent.media.fanout import EncodedFrame, TableFanout
from edge_agent.media.session import ViewerSession
from edge_agent.media.transcode import TranscoderProcess

log = structlog.get_logger(__name__)


class TableMedia:
    def __init__(self, feed: TableFeed, config: MediaConfig,
                 on_feed_up: Callable[[str], Awaitable[None]],
                 on_feed_down: Callable[[str, str], Awaitable[None]],
                 forward: Callable[[tuple[Any, ...]], None] | None = None) -> None:
        self.feed, self.config = feed, config
        # Set when fan-out workers exist: frames also go to them, once per worker.
        self._forward = forward
        self.table_id = feed.table_id
        self.live = False
        self.fanout = TableFanout(len(config.ladder), on_switch=lambda old, new: metrics.RUNG_SWITCHES.labels(
            feed.table_id, "down" if new > old else "up").inc(), late_after_s=1.0 / config.fps)
        self.sessions: dict[str, ViewerSession] = {}
        self._on_feed_up, self._on_feed_down = on_feed_up, on_feed_down
        self._events: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._transcoder: TranscoderProcess | None = None
        self._rung_names = [r.name for r in config.ladder]
        self._rung_bytes = [0] * len(config.ladder)
        self._rung_mark = time.monotonic()
        self._transit_base: list[float | None] = [None] * len(config.ladder)
        self._stopping = False
        self.tap: Callable[[str, int, int, bool, list[bytes]], None] | None = None

    async def start(self) -> None:
        self._spawn()
        self._tasks = [asyncio.create_task(self._run_callbacks()), asyncio.create_task(self._watchdog())]

    def _spawn(self) -> None:
        c = self.config
        self._transcoder = TranscoderProcess(
            self.table_id, self.feed.srt_port, self.feed.srt_latency_ms, c.ladder, c.fps,
            max(1, round(c.fps * c.keyframe_interval_s)), c.feed_timeout_ms, c.audio,
            self.feed.srt_bind or c.srt_bind, self._on_message,
            {"passphrase_file": str(self.feed.srt_passphrase_file) if self.feed.srt_passphrase_file else None,
             "streamid": self.feed.srt_streamid})
        self._transcoder.start()

    async def stop(self) -> None:
        self._stopping = True
        for s in list(self.sessions.values()):
            await s.close()
        self.sessions.clear()
        if self._transcoder is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._transcoder.stop)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def request_keyframe(self) -> None:
        if self._transcoder is not None:
            self._transcoder.request_keyframe()

    # -- transcoder messages (on the event loop) --------------------------------------------
    def _on_message(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "v":
            _, rung, pts, key, payloads, size = msg
            self._rung_stats(rung, pts, size)
            if self._forward is not None:
                self._forward(("v", self.table_id, rung, pts, key, payloads, size))
            self.fanout.push(EncodedFrame(rung, pts, key, payloads, size))
            if self.tap is not None:  # round video evidence and the vision check (edge_agent/evidence)
                self.tap(self.table_id, rung, pts, key, payloads)
        elif kind == "a":
            _, pts, payload = msg
            if self._forward is not None:
                self._forward(("a", self.table_id, pts, payload))
            for s in self.sessions.values():
                s.send_audio(payload, pts)
        elif kind == "lat":
            metrics.INGEST_LATENCY.labels(self.table_id).observe(msg[1] / 1000)
            metrics.ENCODE_TIME.labels(self.table_id).observe(msg[2] / 1000)
        elif kind == "refused":
            metrics.SRT_REFUSED.labels(self.table_id, msg[1]).inc()
            log.warning("srt.caller_refused", table=self.table_id, reason=msg[1], peer=msg[2])
        elif kind == "in":
            metrics.INGEST_FRAMES.labels(self.table_id).inc(msg[1])
            metrics.INGEST_MISSING.labels(self.table_id).inc(msg[2])
        elif kind == "caller":
            log.info("srt.caller_accepted", table=self.table_id, peer=msg[1])
        elif kind == "up":
            self._set_live(True, "")
        elif kind == "down":
            self._set_live(False, msg[1])

    def _set_live(self, live: bool, reason: str) -> None:
        if live == self.live:
            return
        self.live = live
        metrics.FEED_UP.labels(self.table_id).set(1 if live else 0)
        if not live:
            self.fanout.clear()
            if self._forward is not None:
                self._forward(("down", self.table_id))
            for s in self.sessions.values():
                s.awaiting_key = True
        log.info("media.feed", table=self.table_id, live=live, reason=reason)
        if self._stopping:
            return  # our own shutdown is not a feed failure: the casino is stopping too
        self._events.put_nowait(("up", "") if live else ("down", reason))

    def _rung_stats(self, rung: int, pts: int, size: int) -> None:
        name = self._rung_names[rung]
        metrics.RUNG_FRAMES.labels(self.table_id, name).inc()
        self._rung_bytes[rung] += size
        # Late = this frame reached the fan-out more than two frame intervals after the
        # earliest transit seen (the transcoder fell behind).
        transit = time.monotonic() - pts / 90000
        base = self._transit_base[rung]
        if base is None or transit < base:
            self._transit_base[rung] = base = transit
        if transit - base > 2.0 / self.config.fps:
            metrics.RUNG_LATE_FRAMES.labels(self.table_id, name).inc()
        now = time.monotonic()
        if now - self._rung_mark >= 2.0:
            for i, n in enumerate(self._rung_names):
                metrics.RUNG_BITRATE.labels(self.table_id, n).set(self._rung_bytes[i] * 8 / (now - self._rung_mark))
                if self._forward is None:  # with workers the sessions are theirs: the service sums their counts
                    metrics.VIEWERS.labels(self.table_id, n).set(len(self.fanout.hubs[i].sinks))
            self._rung_bytes = [0] * len(self._rung_names)
            self._rung_mark = now

    async def _run_callbacks(self) -> None:
        # Callbacks run one at a time, in order: a quick down/up never reaches the casino swapped.
        while True:
            kind, reason = await self._events.get()
            try:
                if kind == "up":
                    await self._on_feed_up(self.table_id)
                else:
                    await self._on_feed_down(self.table_id, reason)
            except Exception:
                log.exception("media.feed_callback_failed", table=self.table_id, kind=kind)

    async def _watchdog(self) -> None:
        while not self._stopping:
            await asyncio.sleep(1.0)
            t = self._transcoder
            if t is not None and t._proc is not None and not t._proc.is_alive() and not self._stopping:
                log.error("media.transcoder_died", table=self.table_id)
                self._set_live(False, "transcoder died")
                self._spawn()

    # -- viewers ---------------------------------------------------------------------------
    def attach(self, session: ViewerSession) -> None:
        session.activate()
        self.fanout.add(session)
        metrics.VIEWERS.labels(self.table_id, self._rung_names[session.rung]).set(
            len(self.fanout.hubs[session.rung].sinks))

    async def detach(self, session: ViewerSession) -> None:
        self.fanout.remove(session)
        self.sessions.pop(session.id, None)
        await session.close()
