"""The reveal check: tell the dealer what the RNG dealt, watch the camera show it, journal what
was seen (`vision.checked`), and tell the round whether to settle or void (`dealer_error`).

Detected reveals are pushed to the table's players (`vision.reveal`) as soon as the camera shows
them: the overlay puts the result on the picture before the settlement arrives.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from contract.kinds import VISION_CHECKED
from edge_agent.evidence import metrics as M
from edge_agent.studio import cards as K
from edge_agent.vision.config import VisionConfig
from edge_agent.vision.dealer_link import DealerLink
from edge_agent.vision.stage import TableVision, Verdict

log = structlog.get_logger(__name__)
DEALER_ERROR = "dealer_error"

Append = Callable[[str, dict[str, Any]], dict[str, Any]]
Publish = Callable[[str, dict[str, Any]], None]


def _rung_for(config: VisionConfig, ladder: list[Any]) -> int:
    names = [r.name for r in ladder]
    if config.rung is not None:
        return names.index(config.rung)
    return min(range(len(ladder)), key=lambda i: abs(ladder[i].height - 360))


class RevealCheck:
    def __init__(self, config: VisionConfig, media: Any, games: dict[str, str], append: Append,
                 publish: Publish) -> None:
        self.config = config
        self.rung_index = _rung_for(config, list(media.ladder))
        rung = media.ladder[self.rung_index]
        fed = {t.table_id for t in media.tables}
        self.links = {t: DealerLink(url) for t, url in config.dealers.items() if t in fed}
        self.visions = {t: TableVision(t, games[t], rung.width, rung.height)
                        for t in self.links if games.get(t) in ("roulette", "baccarat", "blackjack")}
        self._append, self._publish = append, publish
        from edge_agent.evidence import metrics as EM

        for t in self.visions:  # exported from the start: an alert on it sees 0, not nothing
            for result in ("match", "mismatch", "unreadable"):
                EM.VISION.labels(table=t, result=result)

    def covers(self, table_id: str) -> bool:
        return table_id in self.visions

    def on_frame(self, table_id: str, rung: int, pts90: int, key: bool, payloads: list[bytes]) -> None:
        if rung == self.rung_index:
            v = self.visions.get(table_id)
            if v is not None:
                v.on_frame(key, payloads)

    def opened(self, table_id: str) -> None:
        link = self.links.get(table_id)
        if link is not None and table_id in self.visions:
            link.clear()  # the last round's cards leave the table

    async def reveal(self, table_id: str, chain_id: str, n: int, game: str, outcome: dict[str, Any]) -> Verdict:
        """Deal `outcome` at the table and wait for the camera; journals what it saw."""
        return await self.check(table_id, chain_id, n, game, K.reveal_of(game, outcome))

    async def check(self, table_id: str, chain_id: str, n: int, game: str, expected: dict[str, Any]) -> Verdict:
        """Have the dealer put `expected` (slot -> card or number) on the table, and watch."""
        order = K.baccarat_order(expected) if game == "baccarat" else list(expected)
        fut = self.visions[table_id].expect(expected, self.config.timeout_s)
        self.links[table_id].deal(n, game, expected, order)
        v = await fut
        M.VISION.labels(table_id, v.result).inc()
        if v.latency_ms is not None:
            M.VISION_LATENCY.labels(table_id).observe(v.latency_ms / 1000)
        self._append(VISION_CHECKED, {"table_id": table_id, "chain_id": chain_id, "n": n, "result": v.result,
                                      "expected": expected, "seen": v.seen, "latency_ms": v.latency_ms})
        if v.result != "match":
            log.error("vision.reveal_differs", table=table_id, n=n, result=v.result, expected=expected, seen=v.seen)
        self._publish(f"table:{table_id}", {"type": "vision.reveal", "table_id": table_id, "chain_id": chain_id,
                                            "n": n, "game": game, "result": v.result, "seen": v.seen})
        return v

    def stop(self) -> None:
        for v in self.visions.values():
            v.stop()
        for link in self.links.values():
            link.close()
