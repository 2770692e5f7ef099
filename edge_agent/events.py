"""In-process fan-out of round and player events to connected clients (WebSocket, SSE)."""
from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from typing import Any

import orjson

QUEUE_BOUND = 1000
# A fan-out to more subscribers than this is delivered a slice per event-loop turn, so that
# acknowledgements made durable meanwhile are written between slices, not behind all of it.
SLICE = 200


class Wire(tuple[str, str]):
    """An event as the player socket sends it: (type, JSON text), encoded once per publish."""

    __slots__ = ()

    @property
    def type(self) -> str:
        return self[0]

    @property
    def text(self) -> str:
        return self[1]


class Outbox(asyncio.Queue[Any]):
    """A subscriber queue with a lane ahead of the events: the socket's own replies (acks,
    errors, pongs) go before any event still queued, in their own order, and do not count
    against the subscriber's bound (the edge made them; the bound is for events it fans out)."""

    def __init__(self, maxsize: int = 0, wire: bool = False) -> None:
        super().__init__(maxsize)
        self._ahead = 0
        self.wire = wire

    def put_ahead(self, item: Any) -> None:
        self._queue.insert(min(self._ahead, len(self._queue)), item)  # type: ignore[attr-defined]
        self._ahead += 1
        self._unfinished_tasks += 1  # type: ignore[attr-defined]
        self._finished.clear()  # type: ignore[attr-defined]
        self._wakeup_next(self._getters)  # type: ignore[attr-defined]

    def put_last(self, item: Any) -> None:
        """Append past the bound (the close marker)."""
        self._queue.append(item)  # type: ignore[attr-defined]
        self._unfinished_tasks += 1  # type: ignore[attr-defined]
        self._finished.clear()  # type: ignore[attr-defined]
        self._wakeup_next(self._getters)  # type: ignore[attr-defined]

    def qsize(self) -> int:
        return len(self._queue) - self._ahead  # type: ignore[attr-defined]

    def full(self) -> bool:
        return 0 < self.maxsize <= self.qsize()

    def _get(self) -> Any:
        if self._ahead:
            self._ahead -= 1
        return super()._get()  # type: ignore[misc]

    def clear(self) -> None:
        """Drop the queued events; keep the socket's own replies."""
        q = self._queue  # type: ignore[attr-defined]
        while len(q) > self._ahead:
            q.pop()


class EventHub:
    """Topics are `table:{id}`, `player:{pseudonym}` and `all`. A subscriber that falls
    QUEUE_BOUND events behind is dropped (its queue gets None) rather than slow the tables.

    A `wire` subscriber (the player socket) receives `Wire` items: the event serialized once
    per publish and shared by every socket, instead of once per socket. Events reach every
    subscriber in publish order; a large fan-out is sliced (see SLICE)."""

    def __init__(self) -> None:
        self._subs: defaultdict[str, set[asyncio.Queue[Any]]] = defaultdict(set)
        # Each queue's topics: unsubscribing costs its own topics, not every player's ever seen
        # (thousands of sockets at one blackjack table close together).
        self._topics: dict[int, set[str]] = {}
        self._wires = 0  # wire subscribers: none, no encoding
        # Fan-outs not yet delivered to every subscriber, oldest first: (event, wire, queues, next index).
        self._pending: deque[list[Any]] = deque()

    def subscribe(self, *topics: str, wire: bool = False) -> Outbox:
        q = Outbox(QUEUE_BOUND, wire)
        self._wires += wire
        self._topics.setdefault(id(q), set())
        for t in topics:
            self.add_topic(q, t)
        return q

    def add_topic(self, q: asyncio.Queue[Any], topic: str) -> None:
        self._subs[topic].add(q)
        self._topics.setdefault(id(q), set()).add(topic)

    def unsubscribe(self, q: asyncio.Queue[Any]) -> None:
        topics = self._topics.pop(id(q), None)
        if topics is None:
            return
        self._wires -= getattr(q, "wire", False)
        for t in topics:
            subs = self._subs.get(t)
            if subs is not None:
                subs.discard(q)
                if not subs:
                    del self._subs[t]

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        qs = list(self._subs.get(topic, ())) + list(self._subs.get("all", ()) if topic != "all" else ())
        if not qs:
            return
        wire = Wire((str(event.get("type")), orjson.dumps(event, default=str).decode())) if self._wires else None
        job = [event, wire, qs, 0]
        if self._pending:
            self._pending.append(job)  # behind a fan-out still under way: keep publish order
            return
        self._deliver(job, min(len(qs), SLICE))
        if job[3] < len(qs):
            self._pending.append(job)
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        budget = SLICE
        while self._pending and budget > 0:
            job = self._pending[0]
            budget -= self._deliver(job, budget)
            if job[3] >= len(job[2]):
                self._pending.popleft()
        if self._pending:
            asyncio.get_running_loop().call_soon(self._drain)

    def _deliver(self, job: list[Any], budget: int) -> int:
        event, wire, qs, start = job
        end = min(len(qs), start + budget)
        for i in range(start, end):
            q = qs[i]
            try:
                q.put_nowait(wire if getattr(q, "wire", False) else event)
            except asyncio.QueueFull:
                self.unsubscribe(q)
                if isinstance(q, Outbox):
                    q.clear()  # make room for the close marker
                else:
                    q._queue.clear()  # type: ignore[attr-defined]
                q.put_nowait(None)
        job[3] = end
        return max(1, end - start)
