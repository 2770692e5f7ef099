"""Reality-check reminders for every open player socket, from one timer.

Each socket used to sleep in a task of its own and look every 5 s whether its player's reminder
was due: at a table of 5,000 players that is 1,000 task wake-ups a second. Here the sockets are
spread over `SLOTS` buckets and one task looks at one bucket a second: every socket is still looked
at every `SLOTS` seconds, a reminder is at most that late, as before.
"""
from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import structlog

from edge_agent.domain import responsible as RG

log = structlog.get_logger(__name__)

SLOTS = 5      # buckets: each socket is looked at every SLOTS * TICK_S seconds
TICK_S = 1.0


class _Watch:
    __slots__ = ("psn", "send", "sent")

    def __init__(self, psn: str, send: Callable[[dict[str, Any]], None]) -> None:
        self.psn, self.send, self.sent = psn, send, 0


class RealityChecks:
    def __init__(self, casino: Any) -> None:
        self._casino = casino
        self._slots: list[set[_Watch]] = [set() for _ in range(SLOTS)]
        self._next = itertools.count()
        self._task: asyncio.Task[None] | None = None

    def watch(self, psn: str, send: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Remind `psn` through `send` while the socket is open; returns the call that stops it."""
        w = _Watch(psn, send)
        slot = self._slots[next(self._next) % SLOTS]
        slot.add(w)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return lambda: slot.discard(w)

    def sweep(self, slot: int) -> None:
        """Send every reminder due in one bucket."""
        c = self._casino
        now = c.clock()
        for w in list(self._slots[slot]):
            rg = c.state.player(w.psn)
            if RG.reality_checks_due(rg, now, w.sent) > 0:
                w.sent += 1
                w.send({"type": "reality_check", "elapsed_ms": now - (rg.session_start or 0),
                        "net_position": rg.session_net, "staked": rg.session_staked})

    async def _run(self) -> None:
        for tick in itertools.count():
            await asyncio.sleep(TICK_S)
            if not any(self._slots):
                self._task = None  # the next socket starts it again
                return
            try:
                self.sweep(tick % SLOTS)
            except Exception:
                log.exception("reality-check sweep failed")
