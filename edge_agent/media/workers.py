"""Fan-out worker processes (one per core): each owns its viewers' peers (ICE, DTLS, SRTP,
sockets) and a copy of every table's fan-out. The serving process answers WHEP, spreads new
viewers over workers (fewest viewers first) and forwards each encoded frame once per worker.

Parent -> worker:  ("v", table, rung, pts, key, payloads, size) | ("a", table, pts, payload)
                   | ("down", table) | ("offer", req, table, sdp) | ("delete", sid) | ("stop",)
Worker -> parent:  ("answer", req, sid, etag, sdp) | ("error", req, message) | ("closed", sid)
                   | ("keyframe", table) | ("metrics", per-viewer rows, {(table, rung name): viewers})
"""
from __future__ import annotations

import asyncio
import threading
from multiprocessing.connection import Connection
from typing import Any

import structlog

from edge_agent.media import gcwatch, metrics
from edge_agent.media import peer as peers
from edge_agent.media.child import spawn_child
from edge_agent.media.config import MediaConfig
from edge_agent.media.fanout import EncodedFrame, TableFanout
from edge_agent.media.session import ViewerSession

log = structlog.get_logger(__name__)
CONNECT_TIMEOUT_S = 15.0


async def _worker(config: MediaConfig, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    peers.set_announce_addresses(config.announce_addresses)
    fanouts = {t.table_id: TableFanout(len(config.ladder), late_after_s=1.0 / config.fps) for t in config.tables}
    sessions: dict[str, tuple[str, ViewerSession]] = {}
    bitrates = [r.bitrate_kbps * 1000 for r in config.ladder]
    stop = asyncio.Event()
    lock = threading.Lock()

    def reply(msg: tuple[Any, ...]) -> None:
        with lock:
            conn.send(msg)

    async def serve(table: str, session: ViewerSession) -> None:
        pc = session.peer.pc
        up, gone = asyncio.Event(), asyncio.Event()

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState == "connected":
                up.set()
            elif pc.connectionState in ("failed", "closed"):
                gone.set()

        try:
            await asyncio.wait_for(up.wait(), CONNECT_TIMEOUT_S)
            if not session.closed.is_set():
                session.activate()
                fanouts[table].add(session)
                await asyncio.wait([asyncio.ensure_future(gone.wait()), asyncio.ensure_future(session.closed.wait())],
                                   return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            pass
        finally:
            fanouts[table].remove(session)
            sessions.pop(session.id, None)
            await session.close()
            reply(("closed", session.id))

    async def offer(req: int, table: str, sdp: str) -> None:
        try:
            peer = await peers.answer(sdp)
        except peers.BadOffer as exc:
            reply(("error", req, str(exc)))
            return
        rung = min(config.start_rung, len(config.ladder) - 1)
        session = ViewerSession(table, peer, rung, bitrates, lambda: reply(("keyframe", table)), config.fps,
                                config.abr_enabled)
        sessions[session.id] = (table, session)
        reply(("answer", req, session.id, session.etag, peer.answer_sdp))
        await serve(table, session)

    def dispatch(msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "v":
            _, table, rung, pts, key, payloads, size = msg
            fanouts[table].push(EncodedFrame(rung, pts, key, payloads, size))
        elif kind == "a":
            _, table, pts, payload = msg
            for t, s in sessions.values():
                if t == table:
                    s.send_audio(payload, pts)
        elif kind == "down":
            fanouts[msg[1]].clear()
            for t, s in sessions.values():
                if t == msg[1]:
                    s.awaiting_key = True
        elif kind == "offer":
            asyncio.ensure_future(offer(msg[1], msg[2], msg[3]))
        elif kind == "delete":
            found = sessions.get(msg[1])
            if found is not None:
                asyncio.ensure_future(found[1].close())
        elif kind == "stop":
            stop.set()

    def reader() -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                loop.call_soon_threadsafe(stop.set)
                return
            loop.call_soon_threadsafe(dispatch, msg)

    async def export() -> None:
        """Per-viewer and per-rung metrics to the parent, which is what Prometheus scrapes."""
        names = [r.name for r in config.ladder]
        while True:
            await asyncio.sleep(metrics.WORKER_EXPORT_S)
            counts = {(t, names[i]): len(hub.sinks) for t, f in fanouts.items() for i, hub in enumerate(f.hubs)}
            reply(("metrics", metrics.export_viewers(), counts))

    threading.Thread(target=reader, daemon=True).start()
    exporter = asyncio.ensure_future(export())
    await stop.wait()
    exporter.cancel()
    await asyncio.gather(*(s.close() for _, s in list(sessions.values())), return_exceptions=True)


def run_worker(config_json: str, conn: Connection) -> None:
    # A worker's start-up state lives as long as it does; young collections as rare as in the
    # serving process (edge_agent.runtime), so a join storm does not trigger full ones.
    gcwatch.install(freeze=True, thresholds=(20_000, 50, 100))
    asyncio.run(_worker(MediaConfig.model_validate_json(config_json), conn))


class WorkerHandle:
    """Parent side of one worker."""

    def __init__(self, index: int, config: MediaConfig, on_keyframe: Any) -> None:
        self.index = index
        self.sessions: set[str] = set()
        self._config = config
        self._on_keyframe = on_keyframe
        self._pending: dict[int, asyncio.Future[tuple[str, str, str]]] = {}
        self._req = 0
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Connection | None = None
        self.viewers_by_rung: dict[tuple[str, str], int] = {}  # as last reported
        self._counted: dict[tuple[str, str], float] = {}
        self.on_metrics: Any = None  # called after a report (the service sums rungs over workers)
        self.on_closed: Any = None  # called with the session id when a worker's viewer ends

    def start(self) -> None:
        self._proc, self._conn = spawn_child(run_worker, (self._config.model_dump_json(),), f"fanout-{self.index}",
                                             self._on_reply)

    def _on_reply(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "answer":
            fut = self._pending.pop(msg[1], None)
            self.sessions.add(msg[2])
            if fut is not None and not fut.done():
                fut.set_result((msg[2], msg[3], msg[4]))
        elif kind == "error":
            fut = self._pending.pop(msg[1], None)
            if fut is not None and not fut.done():
                fut.set_exception(peers.BadOffer("bad_offer", msg[2]))
        elif kind == "closed":
            self.sessions.discard(msg[1])
            if self.on_closed is not None:
                self.on_closed(msg[1])
            metrics.forget_viewer(msg[1])
            for key in [k for k in self._counted if k[1] == msg[1]]:
                del self._counted[key]
        elif kind == "metrics":
            metrics.import_viewers(msg[1], self._counted)
            self.viewers_by_rung = msg[2]
            if self.on_metrics is not None:
                self.on_metrics()
        elif kind == "keyframe":
            self._on_keyframe(msg[1])

    def send(self, msg: tuple[Any, ...]) -> None:
        if self._conn is not None:
            with self._lock:
                try:
                    self._conn.send(msg)
                except OSError:
                    pass

    async def offer(self, table: str, sdp: str) -> tuple[str, str, str]:
        self._req += 1
        fut: asyncio.Future[tuple[str, str, str]] = asyncio.get_running_loop().create_future()
        self._pending[self._req] = fut
        self.send(("offer", self._req, table, sdp))
        return await asyncio.wait_for(fut, 30)

    def stop(self) -> None:
        self.send(("stop",))
        if self._proc is not None:
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.terminate()
        if self._conn is not None:
            self._conn.close()
