"""The media service the edge mounts: one TableMedia per configured table, WHEP sessions and who
owns them. Its HTTP adapter is edge_agent.media.whep.build_router (built by the composition)."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from contract import tokens
from edge_agent.media import metrics
from edge_agent.media import peer as peers
from edge_agent.media.access import Owner, ViewerPolicy
from edge_agent.media.config import MediaConfig
from edge_agent.media.session import ViewerSession
from edge_agent.media.table import TableMedia
from edge_agent.media.workers import WorkerHandle

log = structlog.get_logger(__name__)
CONNECT_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Joined:
    """A WHEP session just created (in this process or in a fan-out worker)."""

    id: str
    etag: str
    answer_sdp: str


class MediaService:
    def __init__(self, config: MediaConfig, *, on_feed_up: Callable[[str], Awaitable[None]],
                 on_feed_down: Callable[[str, str], Awaitable[None]],
                 token_public_key_pem: str | None, jurisdiction: str | None = None,
                 policy: ViewerPolicy | None = None) -> None:
        self.config = config
        self.token_public_key_pem = token_public_key_pem
        # Players of this jurisdiction only (None: any; tokens off in development).
        self.jurisdiction = jurisdiction
        self.policy = policy
        # session id -> (table, creator): ownership of the resource, closing by player.
        self._owners: dict[str, tuple[str, tokens.Principal | None]] = {}
        self.workers = [WorkerHandle(i, config, self._keyframe_for) for i in range(config.workers)]
        for w in self.workers:
            w.on_metrics = self._sum_worker_rungs
            w.on_closed = self._forget
        forward = self._forward if self.workers else None
        self.tables = {t.table_id: TableMedia(t, config, on_feed_up, on_feed_down, forward) for t in config.tables}
        self._bitrates = [r.bitrate_kbps * 1000 for r in config.ladder]
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        peers.set_announce_addresses(self.config.announce_addresses)
        for w in self.workers:
            w.start()
        for t in self.tables.values():
            await t.start()
        log.info("media.started", tables=list(self.tables))

    async def stop(self) -> None:
        # Tables close their sessions first; each viewer's task then ends by itself (cancelling it
        # mid `pc.close()` left aiortc in an invalid state). Only stragglers are cancelled.
        await asyncio.gather(*self.tables_stop(), return_exceptions=True)
        pending = list(self._pending)
        if pending:
            _, stragglers = await asyncio.wait(pending, timeout=5)
            for task in stragglers:
                task.cancel()
            await asyncio.gather(*stragglers, return_exceptions=True)
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(None, w.stop) for w in self.workers), return_exceptions=True)

    def _forward(self, msg: tuple[Any, ...]) -> None:
        for w in self.workers:
            w.send(msg)

    def _sum_worker_rungs(self) -> None:
        """`media_viewers{table,rung}` over all workers (each reports its own counts)."""
        totals: dict[tuple[str, str], int] = {}
        for w in self.workers:
            for key, n in w.viewers_by_rung.items():
                totals[key] = totals.get(key, 0) + n
        for (table, rung), n in totals.items():
            metrics.VIEWERS.labels(table, rung).set(n)

    def _keyframe_for(self, table_id: str) -> None:
        t = self.tables.get(table_id)
        if t is not None:
            t.request_keyframe()

    def tables_stop(self) -> list[Awaitable[None]]:
        return [t.stop() for t in self.tables.values()]

    def is_live(self, table_id: str) -> bool:
        t = self.tables.get(table_id)
        return t is not None and t.live

    def viewer_count(self) -> int:
        return sum(len(t.sessions) for t in self.tables.values()) + sum(len(w.sessions) for w in self.workers)

    def has_capacity(self) -> bool:
        return self.viewer_count() < self.config.viewer_capacity

    async def open_session(self, table_id: str, offer_sdp: str, who: tokens.Principal | None = None) -> Joined:
        """Answer a WHEP offer; the viewer joins the fan-out once DTLS is up. Raises peer.BadOffer."""
        joined = await self._open(table_id, offer_sdp)
        self._owners[joined.id] = (table_id, who)
        if who is not None and self.policy is not None:
            self.policy.opened(who, table_id, joined.id)
        return joined

    def owner_of(self, session_id: str) -> Owner | None:
        """The principal that created the session (None: tokens off). KeyError if unknown."""
        return Owner.of(self._owners[session_id][1])

    async def close_sessions_of(self, player_id: str, reason: str = "player_excluded") -> int:
        """End every live session a player's tokens opened (exclusion or break: AGCO 2.14)."""
        mine = [(sid, t) for sid, (t, p) in self._owners.items()
                if p is not None and p.role == "player" and p.sub == player_id]
        for sid, table_id in mine:
            await self.close_session(table_id, sid)
        if mine:
            log.info("whep.sessions_closed", sessions=len(mine), reason=reason)
        return len(mine)

    def _forget(self, session_id: str) -> None:
        entry = self._owners.pop(session_id, None)
        if entry is not None and entry[1] is not None and self.policy is not None:
            self.policy.closed(entry[1], session_id)

    async def _open(self, table_id: str, offer_sdp: str) -> Joined:
        if self.workers:
            worker = min(self.workers, key=lambda w: len(w.sessions))
            sid, etag, sdp = await worker.offer(table_id, offer_sdp)
            return Joined(sid, etag, sdp)
        table = self.tables[table_id]
        peer = await peers.answer(offer_sdp)
        rung = min(self.config.start_rung, len(self.config.ladder) - 1)
        session = ViewerSession(table_id, peer, rung, self._bitrates, table.request_keyframe, self.config.fps,
                                self.config.abr_enabled)
        table.sessions[session.id] = session
        task = asyncio.create_task(self._connect(table, session))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return Joined(session.id, session.etag, peer.answer_sdp)

    async def _connect(self, table: TableMedia, session: ViewerSession) -> None:
        pc = session.peer.pc
        up = asyncio.Event()
        gone = asyncio.Event()

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState == "connected":
                up.set()
            elif pc.connectionState in ("failed", "closed"):
                gone.set()

        try:
            # A session closed or failed while joining (DELETE, edge stopping) ends the wait too.
            if pc.connectionState != "connected" and not await _first(up, gone, session.closed,
                                                                      timeout=CONNECT_TIMEOUT_S):
                raise TimeoutError
            if session.closed.is_set() or gone.is_set():
                return
            table.attach(session)
            log.info("whep.viewer_connected", table=table.table_id, session=session.id, rung=session.rung)
            await _first(gone, session.closed)
            if gone.is_set():
                log.info("whep.viewer_gone", table=table.table_id, session=session.id, state=pc.connectionState,
                         ice=pc.iceConnectionState)
        except TimeoutError:
            log.info("whep.viewer_timeout", table=table.table_id, session=session.id)
        finally:
            await table.detach(session)
            self._forget(session.id)

    async def close_session(self, table_id: str, session_id: str) -> bool:
        for w in self.workers:
            if session_id in w.sessions:
                w.send(("delete", session_id))
                w.sessions.discard(session_id)
                self._forget(session_id)
                return True
        table = self.tables.get(table_id)
        session = table.sessions.get(session_id) if table else None
        if session is None or table is None:
            self._forget(session_id)
            return False
        await table.detach(session)
        self._forget(session_id)
        return True

    def session(self, table_id: str, session_id: str) -> ViewerSession | None:
        t = self.tables.get(table_id)
        return t.sessions.get(session_id) if t else None


async def _first(*events: asyncio.Event, timeout: float | None = None) -> bool:
    """Wait until one of `events` is set (False on timeout); the other waiters are cancelled."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return bool(done)
    finally:
        for w in waiters:
            w.cancel()
