"""In-process fan-out of round and player events to connected clients (WebSocket, SSE)."""
from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

QUEUE_BOUND = 1000


class EventHub:
    """Topics are `table:{id}`, `player:{pseudonym}` and `all`. A subscriber that falls
    QUEUE_BOUND events behind is dropped (its queue gets None) rather than slow the tables."""

    def __init__(self) -> None:
        self._subs: defaultdict[str, set[asyncio.Queue[dict[str, Any] | None]]] = defaultdict(set)
        # Each queue's topics: unsubscribing costs its own topics, not every player's ever seen
        # (thousands of sockets at one blackjack table close together).
        self._topics: dict[int, set[str]] = {}

    def subscribe(self, *topics: str) -> asyncio.Queue[dict[str, Any] | None]:
        q: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_BOUND)
        for t in topics:
            self.add_topic(q, t)
        return q

    def add_topic(self, q: asyncio.Queue[dict[str, Any] | None], topic: str) -> None:
        self._subs[topic].add(q)
        self._topics.setdefault(id(q), set()).add(topic)

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any] | None]) -> None:
        for t in self._topics.pop(id(q), ()):
            subs = self._subs.get(t)
            if subs is not None:
                subs.discard(q)
                if not subs:
                    del self._subs[t]

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        for q in list(self._subs.get(topic, ())) + list(self._subs.get("all", ()) if topic != "all" else ()):
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                self.unsubscribe(q)
                q._queue.clear()  # type: ignore[attr-defined]  # make room for the close marker
                q.put_nowait(None)
