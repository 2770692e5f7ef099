"""What the round engine calls at a round's milestones, for its video and its camera check.

    opened(...)           round.opened journaled: start the clip, clear the table
    await reveal(...)     betting closed, outcome known: the dealer deals it, the camera reads
                          it; returns a void reason (`dealer_error`) or None to settle
    await ending(...)     just before round.settled / round.voided: finish and journal the clip
    ended_early(...)      a round voided by anything else (feed lost, operator, shutdown):
                          its clip is finished and journaled right after the void

A table without a feed (or an edge without `video`) gets None / no-ops: the round runs as before.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from edge_agent.evidence.service import EvidenceService
from edge_agent.studio.cards import shown_in
from edge_agent.vision.check import DEALER_ERROR, RevealCheck

log = structlog.get_logger(__name__)


class RoundEvidence:
    def __init__(self, evidence: EvidenceService | None, check: RevealCheck | None) -> None:
        self.evidence, self.check = evidence, check
        self.on_start: Callable[[], Any] | None = None
        self._endings: set[asyncio.Task[Any]] = set()

    def on_frame(self, table_id: str, rung: int, pts90: int, key: bool, payloads: list[bytes]) -> None:
        """The media tap: every encoded frame of every rung of a fed table."""
        if self.evidence is not None:
            self.evidence.on_frame(table_id, rung, pts90, key, payloads)
        if self.check is not None:
            self.check.on_frame(table_id, rung, pts90, key, payloads)

    def opened(self, table_id: str, chain_id: str, n: int) -> None:
        if self.evidence is not None:
            self.evidence.round_opened(table_id, chain_id, n)
        if self.check is not None:
            self.check.opened(table_id)

    def checks(self, table_id: str) -> bool:
        return self.check is not None and self.check.covers(table_id)

    async def reveal(self, table_id: str, chain_id: str, n: int, game: str, outcome: dict[str, Any]) -> str | None:
        if not self.checks(table_id):
            return None
        assert self.check is not None
        v = await self.check.reveal(table_id, chain_id, n, game, outcome)
        return None if v.result == "match" else DEALER_ERROR

    async def shown(self, table_id: str, chain_id: str, n: int, game: str, kind: str,
                    data: dict[str, Any]) -> str | None:
        """A play-phase entry that shows cards (blackjack.dealt, blackjack.card): the camera must
        see them before the round goes on; returns a void reason or None."""
        expected = shown_in(kind, data)
        if expected is None or not self.checks(table_id):
            return None
        assert self.check is not None
        v = await self.check.check(table_id, chain_id, n, game, expected)
        return None if v.result == "match" else DEALER_ERROR

    async def ending(self, table_id: str, chain_id: str, n: int) -> dict[str, Any] | None:
        if self.evidence is None:
            return None
        try:
            return await self.evidence.round_ending(table_id, chain_id, n)
        except Exception:  # the round must end whatever the disk does
            log.exception("video.round_ending_failed", table=table_id, n=n)
            return None

    def ended_early(self, table_id: str, chain_id: str, n: int) -> None:
        """A round voided outside its reveal (feed lost, operator, shutdown): finish its clip too."""
        if self.evidence is None or not self.evidence.recording(table_id, chain_id, n):
            return
        task = asyncio.get_running_loop().create_task(self.ending(table_id, chain_id, n))
        self._endings.add(task)
        task.add_done_callback(self._endings.discard)

    def start(self) -> list[dict[str, Any]]:
        """After the casino's start (its recovery voided what a crash left open)."""
        if self.on_start is not None:
            self.on_start()
        if self.evidence is None:
            return []
        out = self.evidence.recover()
        self.evidence.start()
        return out

    async def stop(self) -> None:
        if self._endings:
            await asyncio.gather(*self._endings, return_exceptions=True)
        if self.evidence is not None:
            await self.evidence.stop()
        if self.check is not None:
            self.check.stop()
