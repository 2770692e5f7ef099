"""The casino's answer to "who may watch" (edge_agent.media.access.ViewerPolicy).

Players: refused while self-excluded or on a break (the same rule as betting), and watched
while they have a session: the casino publishes `session.ended` on `player:{pseudonym}` when an
exclusion or break is set, and their live WHEP sessions are closed then (AGCO 2.14).
Operators and regulators: every session is audited: a regulator's in the journal's access log
(`regulator.query`, as its API queries are), every one in the audit log (`media.audit`).
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from contract import tokens
from edge_agent.domain import responsible as RG
from edge_agent.domain.errors import DomainError
from edge_agent.media.access import Denied

if TYPE_CHECKING:
    from edge_agent.media.service import MediaService

log = structlog.get_logger("audit")
ENDS_VIEWING = ("break", "self_exclusion")


class CasinoViewerPolicy:
    def __init__(self, casino: Any) -> None:
        self.casino = casino
        self.service: MediaService | None = None
        self._watch: dict[str, tuple[asyncio.Task[None], set[str]]] = {}  # player id -> (task, sessions)

    def bind(self, service: MediaService) -> None:
        self.service = service

    def _psn(self, player_id: str) -> str:
        return self.casino.players.pseudonym(player_id)

    def refusal(self, player_id: str) -> Denied | None:
        rg = self.casino.state.players.get(self._psn(player_id))
        if rg is None:
            return None
        try:
            RG.check_can_play(rg, self.casino.clock())
        except DomainError as exc:
            return Denied(403, exc.code, str(exc))
        return None

    def opened(self, principal: tokens.Principal, table_id: str, session_id: str) -> None:
        if principal.role == "player":
            self._watch_player(principal.sub, session_id)
            return
        log.info("media.audit", action="watch", role=principal.role, who=principal.sub,
                 jurisdiction=principal.jurisdiction, table=table_id, session=session_id)
        if principal.role == "regulator":
            self.casino.oversight.record_query(principal.sub, principal.jurisdiction, f"/whep/{table_id}",
                                               {"session": session_id}, 201)

    def closed(self, principal: tokens.Principal, session_id: str) -> None:
        if principal.role != "player":
            log.info("media.audit", action="watch_ended", role=principal.role, who=principal.sub,
                     session=session_id)
            return
        entry = self._watch.get(principal.sub)
        if entry is not None:
            entry[1].discard(session_id)
            if not entry[1]:
                entry[0].cancel()
                del self._watch[principal.sub]

    def _watch_player(self, player_id: str, session_id: str) -> None:
        entry = self._watch.get(player_id)
        if entry is None:
            q = self.casino.events.subscribe(f"player:{self._psn(player_id)}")
            task = asyncio.get_running_loop().create_task(self._until_excluded(player_id, q))
            entry = self._watch[player_id] = (task, set())
        entry[1].add(session_id)

    async def _until_excluded(self, player_id: str, q: asyncio.Queue[dict[str, Any] | None]) -> None:
        try:
            while True:
                ev = await q.get()
                if ev is None:  # dropped as a slow subscriber: look again
                    q = self.casino.events.subscribe(f"player:{self._psn(player_id)}")
                    continue
                if ev.get("type") == "session.ended" and ev.get("reason") in ENDS_VIEWING:
                    self._watch.pop(player_id, None)
                    if self.service is not None:
                        await self.service.close_sessions_of(player_id, str(ev["reason"]))
                    return
        finally:
            self.casino.events.unsubscribe(q)
