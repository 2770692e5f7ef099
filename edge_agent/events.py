"""In-process fan-out of round and player events to connected clients (WebSocket, SSE)."""
from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson

QUEUE_BOUND = 1000
# A fan-out to more subscribers than this is delivered a slice per event-loop turn, so that
# acknowledgements made durable meanwhile are written between slices, not behind all of it.
SLICE = 200
# A direct write (a claim, see EventHub._deliver) counts as this fraction of a queued delivery.
DIRECT_SHARE = 25
# Claimed sockets are handed to the fan-out threads this many at a time, as they are claimed:
# claiming 5,000 sockets takes the loop ~20 ms, which the first players need not wait for.
HANDOFF = 250


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
        self.sink: DirectSink | None = None  # set by the socket that reads this queue, if it can

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


class DirectSink(Protocol):
    """A subscriber's socket that the hub may write an event to directly, bypassing its queue
    (edge_agent.api.wsframes.FrameWriter): only when nothing is queued for it (`claim`)."""

    @property
    def fanout(self) -> Fanout: ...

    def claim(self) -> int | None: ...


class Fanout(Protocol):
    """Writes encoded events to many claimed sinks at once (edge_agent.api.wsfanout.Broadcaster)."""

    def encode(self, texts: list[str]) -> bytes: ...

    def send(self, sinks: Sequence[DirectSink], fds: list[int], data: bytes | list[bytes]) -> None: ...


# One delivery: the events every subscriber gets, in order, and those a subscriber gets after
# them as the holder of a topic of its own (a player's settlement behind its table's result).
Item = tuple[dict[str, Any], "Wire | None"]


class EventHub:
    """Topics are `table:{id}`, `player:{pseudonym}` and `all`. A subscriber that falls
    QUEUE_BOUND events behind is dropped (its queue gets None) rather than slow the tables.

    A `wire` subscriber (the player socket) receives `Wire` items: the event serialized once
    per publish and shared by every socket, instead of once per socket. Events reach every
    subscriber in publish order; a large fan-out is sliced (see SLICE). A wire subscriber with a
    `sink` and nothing queued is written to directly (its events framed once per fan-out)."""

    def __init__(self) -> None:
        self._subs: defaultdict[str, set[asyncio.Queue[Any]]] = defaultdict(set)
        # Each queue's topics: unsubscribing costs its own topics, not every player's ever seen
        # (thousands of sockets at one blackjack table close together).
        self._topics: dict[int, set[str]] = {}
        self._wires = 0  # wire subscribers: none, no encoding
        # Fan-outs not yet delivered to every subscriber, oldest first:
        # [queues, next index, common items, {queue: own items} or None, encoded common or None].
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

    def _item(self, event: dict[str, Any]) -> Item:
        return event, (Wire((str(event.get("type")), orjson.dumps(event, default=str).decode())) if self._wires else None)

    def _audience(self, topic: str) -> list[asyncio.Queue[Any]]:
        return list(self._subs.get(topic, ())) + list(self._subs.get("all", ()) if topic != "all" else ())

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        qs = self._audience(topic)
        if qs:
            self._enqueue([qs, 0, [self._item(event)], None, None])

    def publish_with_own(self, topic: str, events: list[dict[str, Any]], own: Mapping[str, dict[str, Any]]) -> None:
        """Publish `events` to `topic`, each subscriber getting right behind them the event of
        `own` for a topic it holds (e.g. `player:{psn}` -> its settlement), in the same delivery:
        a socket writes them together. As if published one after the other: `all` subscribers
        get every event, and holders of an `own` topic who are not on `topic` get theirs after."""
        qs = list(self._subs.get(topic, ()))
        common = [self._item(e) for e in events]
        covered = set(qs)
        mine: dict[asyncio.Queue[Any], list[Item]] = {}
        rest: list[tuple[list[asyncio.Queue[Any]], Item]] = []
        items = {t: self._item(ev) for t, ev in own.items()}  # each own event encoded once
        for t, item in items.items():
            others = []
            for q in self._subs.get(t, ()):
                if q in covered:
                    mine.setdefault(q, []).append(item)
                else:
                    others.append(q)
            if others:
                rest.append((others, item))
        if qs:
            self._enqueue([qs, 0, common, mine, None])
        everyone = [q for q in self._subs.get("all", ()) if q not in covered] if topic != "all" else []
        if everyone:
            self._enqueue([everyone, 0, common, None, None])
        for others, item in rest:
            self._enqueue([others, 0, [item], None, None])
        alls = self._subs.get("all")
        theirs = [item for t, item in items.items() if t != "all"]
        if alls and theirs:  # every own event to `all`, in one delivery rather than one per player
            self._enqueue([list(alls), 0, theirs, None, None])

    def _enqueue(self, job: list[Any]) -> None:
        if self._pending:
            self._pending.append(job)  # behind a fan-out still under way: keep publish order
            return
        self._deliver(job, min(len(job[0]), SLICE))
        if job[1] < len(job[0]):
            self._pending.append(job)
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        budget = SLICE
        while self._pending and budget > 0:
            job = self._pending[0]
            budget -= self._deliver(job, budget)
            if job[1] >= len(job[0]):
                self._pending.popleft()
        if self._pending:
            asyncio.get_running_loop().call_soon(self._drain)

    def _deliver(self, job: list[Any], budget: int) -> int:
        """Deliver the job onwards from its next index; returns the budget spent. A queued event
        costs 1 (the socket's task runs for it later); a direct write costs 1/DIRECT_SHARE (a
        claim; the fan-out thread does the rest), so that one turn hands the thread a large batch."""
        qs, i, common, mine = job[0], job[1], job[2], job[3]
        n = len(qs)
        queued = direct = 0
        sinks: list[DirectSink] = []
        fds: list[int] = []
        datas: list[bytes] = []
        while i < n and queued + direct // DIRECT_SHARE < budget:
            q = qs[i]
            i += 1
            own = mine.get(q) if mine else None
            wire = getattr(q, "wire", False)
            sink = getattr(q, "sink", None) if wire else None
            if sink is not None and not q._queue:  # type: ignore[attr-defined]
                fd = sink.claim()
                if fd is not None:
                    if job[4] is None:
                        job[4] = sink.fanout.encode([w.text for _, w in common])
                    sinks.append(sink)
                    fds.append(fd)
                    datas.append(job[4] + sink.fanout.encode([w.text for _, w in own]) if own else job[4])
                    direct += 1
                    if len(sinks) == HANDOFF:  # the threads start on these while the rest are claimed
                        sink.fanout.send(sinks, fds, datas if mine else job[4])
                        sinks, fds, datas = [], [], []
                    continue
            queued += 1
            try:
                for ev, w in (common + own if own else common):
                    q.put_nowait(w if wire else ev)
            except asyncio.QueueFull:
                self.unsubscribe(q)
                if isinstance(q, Outbox):
                    q.clear()  # make room for the close marker
                else:
                    q._queue.clear()  # type: ignore[attr-defined]
                q.put_nowait(None)
        if sinks:
            sinks[0].fanout.send(sinks, fds, datas if mine else job[4])
        job[1] = i
        return max(1, queued + direct // DIRECT_SHARE)
