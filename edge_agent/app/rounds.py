"""Round scheduling: one loop per table — open, take bets, close, play (if the game has a play
phase), settle, reveal — plus everything that ends a round early (feed lost, operator, exclusion,
shutdown) and the recovery of half-done rounds at start-up.

A round is settled whole or voided whole: a void refunds every stake of every bet (extra stakes
of a play phase included), a settlement pays every bet.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from contract import fairness
from contract import journal as J
from contract.bounds import first_unbounded
from contract.canonical import assert_no_floats
from edge_agent import gcquiet
from edge_agent.app.engine import Engine
from edge_agent.app.notices import Notices
from edge_agent.app.seeds import SeedVault
from edge_agent.domain import errors as E
from edge_agent.domain import games
from edge_agent.domain import responsible as RG
from edge_agent.domain import state as ST
from edge_agent.journal.store import JournalFailed

log = structlog.get_logger("casino")

NOT_IN_PLAY = "not_in_play"
# round.closed waits at most this long for the round's next table event (the deal, the result) to
# go out with it in one delivery (Engine.hold_table); the client knows the close time anyway.
CLOSED_HOLD_S = 0.2

ExtraStakeCheck = Callable[[ST.Table, str, int], None]


async def _sleep_until(wake: asyncio.Event, seconds: float, interrupted: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not interrupted():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), left)
        except TimeoutError:
            return


class _Play:
    """`games.PlayContext` for one round's play phase."""

    def __init__(self, scheduler: RoundScheduler, t: ST.Table, r: ST.Round, seed: bytes, client_seed: str) -> None:
        self._s, self._t, self._r = scheduler, t, r
        self._seed, self._client_seed = seed, client_seed

    @property
    def round(self) -> ST.Round:
        return self._r

    @property
    def server_seed(self) -> bytes:
        return self._seed

    @property
    def client_seed(self) -> str:
        return self._client_seed

    @property
    def settings(self) -> Mapping[str, Any]:
        return self._t.spec.options

    def now(self) -> int:
        return self._s.engine.clock()

    def _ended(self) -> bool:
        return self._t.round is not self._r

    async def record(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        e = self._append(kind, data)
        await self._s.engine.durable(e)
        w = self._s.witness
        if w is not None and w.checks(self._r.table_id):  # cards shown live: the camera must see them
            reason = await w.shown(self._r.table_id, self._r.chain_id, self._r.n, self._r.game, kind, data)
            if reason is not None and not self._ended():
                await self._s.engine.durable(self._s.void(self._t, reason))
        return e

    def record_soon(self, kind: str, data: dict[str, Any],
                    done: Callable[[dict[str, Any], BaseException | None], None]) -> dict[str, Any]:
        e = self._append(kind, data)
        self._s.engine.when_durable(
            e, lambda err: done(e, None if err is None else JournalFailed(str(err))))
        return e

    def _append(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        if self._ended():
            raise games.RoundEnded(f"round {self._r.n} of {self._r.table_id} has ended")
        if kind not in games.get(self._r.game).play_kinds:
            raise ValueError(f"{kind!r} is not a journal kind of {self._r.game}")
        return self._s.engine.record(kind, {**data, "table_id": self._r.table_id, "chain_id": self._r.chain_id,
                                            "n": self._r.n})

    def announce(self, event: dict[str, Any]) -> None:
        self._s.engine.publish_table(self._r.table_id, {**event, "table_id": self._r.table_id, "n": self._r.n})

    def announce_with_result(self, event: dict[str, Any]) -> None:
        self._s.announce_with_result(self._r.table_id, {**event, "table_id": self._r.table_id, "n": self._r.n})

    def tell(self, player: str, event: dict[str, Any]) -> None:
        self._s.engine.publish_player(player, event)

    async def window(self, seconds: float) -> bool:
        await _sleep_until(self._s.wakeup(self._r.table_id), seconds, self._ended)
        return not self._ended()

    def check_extra_stake(self, player: str, amount: int) -> None:
        self._s.check_extra_stake(self._t, player, amount)

    def check_player(self, player: str) -> None:
        eng = self._s.engine
        RG.check_can_play(eng.state.player(player), eng.clock())


class RoundScheduler:
    def __init__(self, engine: Engine, seeds: SeedVault, notices: Notices, check_extra_stake: ExtraStakeCheck) -> None:
        self.engine = engine
        self._seeds = seeds
        self._notices = notices
        self.check_extra_stake = check_extra_stake
        self._wakeup: dict[str, asyncio.Event] = {}
        self._playing: dict[str, games.PlayPhase] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # Round video and the camera check of reveals (edge_agent/evidence/hooks.py); None: off.
        self.witness: Any = None
        self._previewed: dict[str, tuple[Any, games.Settlement]] = {}

    # --- start-up and shutdown ----------------------------------------------------------------

    def prepare(self) -> None:
        """At start-up: journal changed rules, finish half-done rounds, mark studio feeds unknown."""
        self.sync_table_rules()
        self.recover_rounds()
        for t in self.engine.state.tables.values():
            # After a restart the studio feed is unknown until the media path reports it.
            if t.spec.requires_feed and t.feed_live:
                self.engine.record(ST.TABLE_FEED, {"table_id": t.spec.table_id, "live": False, "reason": "edge_start"})

    def start_tables(self) -> None:
        for table_id in (t.table_id for t in self.engine.config.tables):
            self.wakeup(table_id)
            self._tasks.append(asyncio.create_task(self._table_loop(table_id), name=f"table-{table_id}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    def sync_table_rules(self) -> None:
        """Journal the configured rule set of a table when the journal does not hold it yet.

        A new version applies from the next round on: terms never change mid-round."""
        for spec in self.engine.config.table_specs():
            t = self.engine.state.tables[spec.table_id]
            if not t.rules_journaled or t.rules != spec.rules:
                self.engine.record(ST.TABLE_RULES, {"table_id": spec.table_id, "version": spec.rules.version,
                                                    "game": spec.rules.game,
                                                    "limits": spec.rules.describe()["limits"]})

    def recover_rounds(self, reason: str = "edge_restart") -> None:
        """Never leave a round half-done: settle one whose betting closed, void one still open."""
        for t in self.engine.state.tables.values():
            r = t.round
            if r is None:
                continue
            if r.status == ST.CLOSED and games.get(r.game).void_cut_short:
                # A play phase cut short whose players could not finish their decisions
                # (blackjack): voided, every stake, extra stakes too, refunded.
                self.void(t, reason)
            elif r.status == ST.CLOSED and self._seeds.holds(t.spec.table_id, r.chain_id):
                # A play phase cut short settles from what its entries hold (no decision: stand).
                self._settle_or_void(t)
            elif r.status == ST.CLOSED:
                # The chain's secret is not in this journal (its entries came back from the
                # cloud's copy, which never holds secrets): no honest outcome exists, so refund.
                self.void(t, "seed_lost")
            else:
                self.void(t, reason)

    # --- one round ----------------------------------------------------------------------------

    def open_round(self, table_id: str) -> ST.Round:
        t = self.engine.state.tables[table_id]
        if t.round is not None:
            raise E.DomainError(E.INVALID_REQUEST, "a round is already in progress")
        chain = self._seeds.ensure_chain(t)
        closes = self.engine.clock() + int(t.spec.betting_window_s * 1000)
        self.engine.record(J.ROUND_OPENED, {"table_id": table_id, "chain_id": chain.chain_id, "n": chain.used + 1,
                                            "game": t.spec.game, "rules_version": t.rules.version,
                                            "closes_ts": closes})
        r = t.round
        assert r is not None
        self.engine.publish_table(table_id, {
            "type": "round.opened", "table_id": table_id, "chain_id": r.chain_id, "n": r.n, "game": r.game,
            "rules_version": r.rules_version, "closes_ts": closes, "commitment": chain.commitment,
            "chain_length": chain.length,
        })
        if self.witness is not None:
            self.witness.opened(table_id, r.chain_id, r.n)
        return r

    def close_round(self, table_id: str, hold_s: float = 0.0) -> None:
        """Close betting; with `hold_s`, round.closed goes out with the next table event (at most
        that much later, see Engine.hold_table)."""
        t = self.engine.state.tables[table_id]
        r = t.round
        if r is None or r.status != ST.OPEN:
            return
        self.engine.record(J.ROUND_CLOSED, {"table_id": table_id, "chain_id": r.chain_id, "n": r.n})
        event = {"type": "round.closed", "table_id": table_id, "n": r.n}
        if hold_s:
            self.engine.hold_table(table_id, event, hold_s)
        else:
            self.engine.publish_table(table_id, event)

    async def settle_round(self, table_id: str) -> dict[str, Any] | None:
        """Close betting, run the game's play phase if it has one, settle. None: voided meanwhile."""
        # From the close of betting to the result handed to the sockets: the deal, every decision
        # step (acknowledgements) and the settlement run without young collections (gcquiet).
        with gcquiet.quiet():
            try:
                return await self._close_play_settle(table_id)
            finally:
                self.engine.flush_table(table_id)  # round.closed is never left held

    async def _close_play_settle(self, table_id: str) -> dict[str, Any] | None:
        t = self.engine.state.tables[table_id]
        self.close_round(table_id, hold_s=CLOSED_HOLD_S)
        r = t.round
        if r is None:
            return None
        game = games.get(r.game)
        play = game.play_phase(_Play(self, t, r, self._seeds.seed(r), fairness.client_seed(r.client_seed_bets())))
        if play is not None:
            self._playing[table_id] = play
            try:
                await play.run()
            except games.RoundEnded:
                pass
            except Exception:  # a game bug must not freeze the table
                log.exception("play phase failed; the round settles from its entries", table=table_id)
            finally:
                self._playing.pop(table_id, None)
            if t.round is not r:
                return None
        if self.witness is not None and await self._witnessed_void(t, r):
            return None
        e, bets = self._settle_or_void(t)
        await self.engine.durable(e)  # the seed is public only once the settlement is on disk
        if e["kind"] == J.ROUND_VOIDED:
            return e
        d = e["data"]
        t.last_result = {"n": d["n"], "outcome": d["outcome"], "chain_id": d["chain_id"]}
        self._notices.settled(e, bets)
        return e

    async def _witnessed_void(self, t: ST.Table, r: ST.Round) -> bool:
        """The dealer deals the outcome and the camera must show it; the round's clip is journaled
        (`round.video`) before its end. True when the round was voided (`dealer_error`) or ended."""
        try:
            outcome = games.get(r.game).settle(r, self._seeds.seed(r),
                                               fairness.client_seed(r.client_seed_bets())).outcome
        except Exception:  # noqa: BLE001 - no outcome to deal: _settle_or_void voids the round with the reason
            return False
        reason = await self.witness.reveal(r.table_id, r.chain_id, r.n, r.game, outcome)
        await self.witness.ending(r.table_id, r.chain_id, r.n)
        if t.round is not r:
            return True
        if reason is not None:
            await self.engine.durable(self.void(t, reason))
            return True
        return False

    def _settle_or_void(self, t: ST.Table) -> tuple[dict[str, Any], list[ST.Bet]]:
        """Settle the round; should computing it ever fail on what the edge accepted, void it
        (every stake refunded, the reason on record) so the table keeps serving and restarts clean."""
        r = t.round
        assert r is not None
        bets = list(r.bets)
        try:
            data = self._settlement(r)
        except Exception as exc:  # any bug here would otherwise freeze the table
            log.exception("settlement failed: voiding the round", table=r.table_id, n=r.n)
            e = self.void(t, f"settlement_failed: {type(exc).__name__}")
            assert e is not None
            return e, bets
        return self.engine.record(J.ROUND_SETTLED, data), bets

    def _settlement(self, r: ST.Round) -> dict[str, Any]:
        """The round.settled data; raises when the round cannot be settled."""
        seed = self._seeds.seed(r)
        cs = fairness.client_seed(r.client_seed_bets())
        previewed = self._previewed.pop(r.table_id, None)
        result = previewed[1] if previewed and previewed[0] == r.key else games.get(r.game).settle(r, seed, cs)
        data = {"table_id": r.table_id, "chain_id": r.chain_id, "n": r.n, "game": r.game,
                "server_seed": seed.hex(), "client_seed": cs, "outcome": result.outcome, "payouts": result.payouts}
        # What the journal could not hold or a verifier could not re-check fails here, not later.
        assert_no_floats(data)
        if first_unbounded(data) is not None:
            raise ValueError("settlement integer outside signed 64 bits")
        paid = [p["bet_id"] for p in data["payouts"]]
        if sorted(paid) != sorted(b.bet_id for b in r.bets):
            raise ValueError("settlement does not pay every bet exactly once")
        return data

    def void(self, t: ST.Table, reason: str) -> dict[str, Any] | None:
        """Void the table's round, refunding every stake (not yet durable); None when there is none."""
        r = t.round
        if r is None:
            return None
        bets = list(r.bets)
        e = self.engine.record(J.ROUND_VOIDED, {
            "table_id": r.table_id, "chain_id": r.chain_id, "n": r.n, "reason": reason,
            "refunds": [{"bet_id": b.bet_id, "amount": b.stake} for b in bets],
        })
        self._notices.voided(e, bets)
        self.wake(t.spec.table_id)
        if self.witness is not None:
            self.witness.ended_early(r.table_id, r.chain_id, r.n)  # a voided round keeps its clip
        return e

    def announce_with_result(self, table_id: str, event: dict[str, Any]) -> None:
        """See PlayContext.announce_with_result."""
        if self.witness is not None:
            self.engine.publish_table(table_id, event)  # the reveal on camera takes a while: now
        else:
            self.engine.hold_table(table_id, event, None)  # out with the round's end (notices.py)

    def phase(self, table_id: str) -> games.PlayPhase | None:
        """The play phase running at the table now, if any (simulation, support views)."""
        return self._playing.get(table_id)

    async def act(self, psn: str, table_id: Any, action: Mapping[str, Any]) -> dict[str, Any]:
        """A player's decision in the play phase of the table's round; returns once durable."""
        return await self._taking_decisions(table_id).act(psn, action)

    def submit(self, psn: str, table_id: Any, action: Mapping[str, Any], answer: games.Answer) -> None:
        """`act` without a task (the WebSocket's path): refused at once, or answered once durable."""
        self._taking_decisions(table_id).submit(psn, action, answer)

    def _taking_decisions(self, table_id: Any) -> games.PlayPhase:
        play = self._playing.get(self.engine.table(table_id).spec.table_id)
        if play is None:
            raise E.DomainError(NOT_IN_PLAY, "the table's round takes no decisions now", 409)
        return play

    # --- the table loop -----------------------------------------------------------------------

    def wakeup(self, table_id: str) -> asyncio.Event:
        ev = self._wakeup.get(table_id)
        if ev is None:
            ev = self._wakeup[table_id] = asyncio.Event()
        return ev

    def wake(self, table_id: str) -> None:
        ev = self._wakeup.get(table_id)
        if ev is not None:
            ev.set()

    async def _table_loop(self, table_id: str) -> None:
        t = self.engine.state.tables[table_id]
        wake = self.wakeup(table_id)
        while self.engine.running:
            try:
                if not t.accepting:
                    wake.clear()
                    await wake.wait()
                    continue
                r = self.open_round(table_id)
                await _sleep_until(wake, t.spec.betting_window_s, lambda r=r: t.round is not r)
                if t.round is r:
                    # The collection put off through the round (gcquiet) runs when the result
                    # has been shown, before the next round opens: not inside a broadcast.
                    with gcquiet.quiet():
                        await self.settle_round(table_id)
                        await asyncio.sleep(t.spec.reveal_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("table loop error", table=table_id)
                await asyncio.sleep(1)

    # --- the studio feed and operator actions -------------------------------------------------

    async def feed_up(self, table_id: str) -> None:
        t = self.engine.table(table_id)
        if not t.feed_live:
            e = self.engine.record(ST.TABLE_FEED, {"table_id": table_id, "live": True, "reason": "feed_resumed"})
            await self.engine.durable(e)
            self.engine.publish_table(table_id, {"type": "table.live", "table_id": table_id})
            self.wake(table_id)

    async def feed_down(self, table_id: str, reason: str = "studio_feed_lost") -> None:
        """The feed and the round are one thing to the player: no picture, no round."""
        t = self.engine.table(table_id)
        if t.feed_live:
            self.engine.record(ST.TABLE_FEED, {"table_id": table_id, "live": False, "reason": reason})
        self.void(t, reason)
        await self.engine.durable()
        self.engine.publish_table(table_id, {"type": "table.down", "table_id": table_id, "reason": reason})
        self.wake(table_id)

    async def void_round(self, table_id: str, reason: str, by: str) -> dict[str, Any]:
        t = self.engine.table(table_id)
        if t.round is None:
            raise E.DomainError(E.NOT_FOUND, "no round in progress", 404)
        e = self.void(t, f"{reason}")
        assert e is not None
        await self.engine.durable(e)
        return e

    async def set_table_enabled(self, table_id: str, enabled: bool, reason: str, by: str) -> None:
        t = self.engine.table(table_id)
        self.engine.record(ST.TABLE_STATUS, {"table_id": table_id, "enabled": enabled, "reason": reason, "by": by})
        if not enabled:
            self.void(t, "table_disabled")
        await self.engine.durable()
        self.wake(table_id)
