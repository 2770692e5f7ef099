"""The core every application service shares: the journal port, the state folded from it, events.

Every command has one shape: validate against `state` (a DomainError leaves everything
untouched), then `record` its entries — each appended and folded into the state in the same
synchronous step, so concurrent requests never interleave half-way — then await durability
before answering (`durable`). State changes only through journal entries.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from contract import journal as J
from edge_agent import metrics as M
from edge_agent.app.ports import Data, Entry, JournalPort, Records
from edge_agent.config import EdgeConfig
from edge_agent.domain import errors as E
from edge_agent.domain import state as ST
from edge_agent.events import EventHub


class Engine:
    def __init__(self, config: EdgeConfig, store: JournalPort, clock: Callable[[], int]) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.state = ST.EdgeState(config.table_specs(), config.rg_defaults())
        self.events = EventHub()
        # Told at the player's next connection: what happened while nobody could be listening.
        self.notices: dict[str, list[dict[str, Any]]] = {}
        self.running = False
        # Table events waiting to go out with the table's next one (hold_table).
        self._held: dict[str, tuple[list[dict[str, Any]], asyncio.TimerHandle | None]] = {}

    def replay(self) -> None:
        """Rebuild the state from the journal, checking the hash chain as it goes."""
        prev = J.GENESIS_PREV
        for e in self.store.iter_all():
            if e["prev"] != prev or J.entry_hash(e["seq"], e["ts"], e["kind"], e["data"], e["prev"]) != e["hash"]:
                raise RuntimeError(f"journal hash chain broken at seq {e['seq']}: refusing to start")
            self.state.apply(e)
            prev = e["hash"]
        M.JOURNAL_HEAD.set(self.state.seq)

    def record(self, kind: str, data: Data | Callable[[int], Data], records: Records = ()) -> Entry:
        """Append one entry and fold it into the state. Not yet durable."""
        e = self.store.append(kind, data, records)
        self.state.apply(e)
        return e

    async def durable(self, e: Entry | None = None) -> None:
        """Wait until `e` (default: everything recorded so far) is committed."""
        await self.store.durable(self.store.seq if e is None else e["seq"])

    def when_durable(self, e: Entry, done: Callable[[BaseException | None], None]) -> None:
        """Call `done(None)` from the event loop once `e` is committed (`done(error)` if the journal fails)."""
        self.store.when_durable(e["seq"], done)

    def table(self, table_id: Any) -> ST.Table:
        t = self.state.tables.get(table_id) if isinstance(table_id, str) else None
        if t is None:
            raise E.DomainError(E.UNKNOWN_TABLE, f"unknown table {table_id!r}", 404)
        return t

    def publish_table(self, table_id: str, event: dict[str, Any]) -> None:
        if table_id in self._held:
            self.publish_table_with_players(table_id, [event], {})
        else:
            self.events.publish(f"table:{table_id}", event)

    def hold_table(self, table_id: str, event: dict[str, Any], at_most_s: float | None) -> None:
        """Publish `event` in one delivery with the table's next event, or alone after
        `at_most_s` (None: with the next, e.g. blackjack's dealer with the round's result): at a
        table of thousands, two table-wide messages moments apart (round.closed, then the deal once
        it is durable) would be two writes to every socket, the second queued behind the first
        just as the first decisions come in."""
        held = self._held.get(table_id)
        if held is None:
            timer = (None if at_most_s is None
                     else asyncio.get_running_loop().call_later(at_most_s, self.flush_table, table_id))
            self._held[table_id] = ([event], timer)
        else:
            held[0].append(event)

    def flush_table(self, table_id: str) -> None:
        """Publish what is held for the table now (hold_table)."""
        held = self._take_held(table_id)
        if held:
            self.events.publish_with_own(f"table:{table_id}", held, {})

    def _take_held(self, table_id: str) -> list[dict[str, Any]]:
        held = self._held.pop(table_id, None)
        if held is None:
            return []
        if held[1] is not None:
            held[1].cancel()
        return held[0]

    def publish_player(self, psn: str, event: dict[str, Any]) -> None:
        self.events.publish(f"player:{psn}", event)

    def publish_table_with_players(self, table_id: str, events: list[dict[str, Any]],
                                   own: dict[str, dict[str, Any]]) -> None:
        """`events` to the table, each player's event of `own` (by pseudonym) right behind them,
        in one delivery per socket (EventHub.publish_with_own); what is held for the table first."""
        events = self._take_held(table_id) + events
        self.events.publish_with_own(f"table:{table_id}", events, {f"player:{p}": ev for p, ev in own.items()})
