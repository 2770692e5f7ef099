"""Blackjack for any number of players at one table (CONTRACT section 3, the Blackjack paragraph).

The rules live in `contract.blackjack` (shared with the verifier); this module is the game behind
the engine's one interface: one bet per player per round on spot `hand`, then a play phase that
journals the deal, every accepted decision and every step's card, with a decision window per step
that closes early once every open hand has decided. Settlement replays the journaled entries only.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from contract import blackjack as BJ
from edge_agent.domain import errors as E
from edge_agent.domain.games.base import Answer, Game, PlayContext, RoundEnded, Settlement
from edge_agent.domain.rounds import Round

DEFAULT_WINDOW_S = 6.0
# Refusals that are about timing (409) rather than the request itself (422).
_CONFLICTS = {BJ.DECISIONS_CLOSED, BJ.ALREADY_DECIDED, BJ.HAND_FINISHED, BJ.HAND_TAKES_CARD}


class Blackjack(Game):
    name = BJ.BLACKJACK
    rules_version = "blackjack/1"
    play_kinds = frozenset(BJ.KINDS)
    void_cut_short = True  # players mid-decision cannot finish: refund (docs/FAIRNESS.md)

    def spots(self) -> list[str]:
        return [BJ.SPOT]

    def paytable(self) -> dict[str, str]:
        return {"win": "1:1", "blackjack": "3:2 (floor)", "push": "stake returned",
                "dealer": "stands on all 17s, no hole card",
                "dealer blackjack": "extra stakes (doubles, split) returned; main stake lost unless a blackjack",
                "double": "any two cards (not split aces)", "split": "once, two cards of equal value"}

    def admit(self, r: Round, player: str, spot: str, amount: int) -> None:
        if r.staked.get(player):
            raise E.DomainError(E.DUPLICATE_BET, "one blackjack hand per player per round", 409)

    def extra_stake(self, kind: str, data: Mapping[str, Any]) -> tuple[str, int] | None:
        if kind == BJ.DECISION and data.get("amount"):
            return data["bet_id"], data["amount"]
        return None

    def __init__(self) -> None:
        self._finished: dict[tuple[str, str, int], Phase] = {}

    def settle(self, r: Round, server_seed: bytes, client_seed: str) -> Settlement:
        phase = self._finished.pop(r.key, None)
        if phase is not None and phase.journaled == len(r.play) and phase.play.players_done:
            play = phase.play  # built from the same shoe and exactly the journaled entries
        else:
            play = replay(r, shoe_of(r, server_seed, client_seed))
        if not play.players_done and play.run_step().card is not None:
            # Only a finished play phase is settled; a cut-short round is voided (see recovery).
            raise RuntimeError(f"blackjack round {r.n} of {r.table_id} has hands still playing")
        payouts = play.payouts()
        return Settlement(play.outcome(), [{"bet_id": b.bet_id, "payout": payouts[b.bet_id]} for b in r.bets])

    def play_phase(self, ctx: PlayContext) -> Phase:
        return Phase(ctx, self._finished)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "decisions": list(BJ.ACTIONS)}


def shoe_of(r: Round, server_seed: bytes, client_seed: str) -> list[str]:
    """The round's shuffled shoe (one seam: the engine tests stack the deck here)."""
    return BJ.shoe(server_seed, client_seed, r.n)


def replay(r: Round, shoe: list[str]) -> BJ.Play:
    """The round's Play from its journaled bets, decisions and step cards."""
    play = BJ.Play.deal(shoe, [(b.bet_id, b.amount) for b in r.bets])
    for kind, d in r.play:
        if kind == BJ.DECISION:
            play.decide(d["bet_id"], d["action"])
        elif kind == BJ.CARD:
            play.run_step()
    return play


class Phase:
    """One round's players' phase: deal, decision steps, step cards. The dealer draws at settlement."""

    def __init__(self, ctx: PlayContext, finished: dict[tuple[str, str, int], Phase] | None = None) -> None:
        self.ctx = ctx
        self._finished = finished if finished is not None else {}
        self.journaled = 0  # entries of this round's play this phase journaled
        r = ctx.round
        self.play = BJ.Play.deal(shoe_of(r, ctx.server_seed, ctx.client_seed), [(b.bet_id, b.amount) for b in r.bets])
        self.bet_of = {b.bet_id: b for b in r.bets}
        self.by_player = {b.player: b.bet_id for b in r.bets}
        self.window_s = float(ctx.settings.get("decision_window_s", DEFAULT_WINDOW_S))
        self.open = False
        self.closes_ts = 0
        self._all_decided = asyncio.Event()
        self._inflight = 0               # decisions journaled, not yet answered
        self._idle = asyncio.Event()
        self._waiting: set[str] = set()  # bets of the open step still to decide (O(1) per decision)
        self._answers: dict[tuple[str, str], tuple[str, asyncio.Future[dict[str, Any]]]] = {}

    # --- the phase --------------------------------------------------------------------------

    async def run(self) -> None:
        p = self.play
        await self._record(BJ.DEALT, {"hand": p.shared_hand, "dealer_up": p.dealer_up})
        self.ctx.announce({"type": "blackjack.dealt", "hand": p.shared_hand, "dealer_up": p.dealer_up,
                           "players": len(p.bets), **self._open_step()})
        closed_ts = self.ctx.now()
        while not p.players_done:
            if self.open:
                await self._wait_window()
            self.open = False
            closed_ts = self.ctx.now()
            res = p.run_step()
            if res.card is None:
                break
            await self._record(BJ.CARD, {"step": res.step, "card": res.card})
            await self._acks_sent()
            # closed_ts: when the step's window closed (clients and the benchmark time the card from it)
            self.ctx.announce({"type": "blackjack.card", "step": res.step, "card": res.card,
                               "takers": len(res.takers), "closed_ts": closed_ts, **self._open_step()})
        await self._acks_sent()
        # Settlement (right after) may reuse this play instead of replaying 5,000 hands again.
        self._finished.clear()
        self._finished[self.ctx.round.key] = self
        # The dealer's cards are in the result: told with it, in the same write (settlement ≤ 500 ms).
        self.ctx.announce_with_result({"type": "blackjack.dealer", "steps": p.steps_taken, "closed_ts": closed_ts})

    def _record(self, kind: str, data: dict[str, Any]) -> Any:
        """ctx.record, counting what this phase journaled (appended at once, durable when awaited)."""
        coro = self.ctx.record(kind, data)
        self.journaled += 1
        return coro

    async def _acks_sent(self) -> None:
        """Wait until every decision of the closed step has been answered, so that a player sees
        its acknowledgement before the step's card (both became durable by the same or an earlier
        commit, but their tasks may resume in any order)."""
        while self._inflight:
            self._idle.clear()
            await self._idle.wait()

    def _open_step(self) -> dict[str, Any]:
        """Open the decision window of the play's current step when any hand has a choice."""
        self._waiting = set(self.play.open_bets())
        waiting = len(self._waiting)
        if not waiting or self.play.players_done:
            return {"next_step": None}
        self._all_decided.clear()
        self.closes_ts = self.ctx.now() + int(self.window_s * 1000)
        self.open = True
        return {"next_step": self.play.step, "closes_ts": self.closes_ts, "deciding": waiting}

    async def _wait_window(self) -> None:
        """The window's time, or less once every open hand has decided; RoundEnded when voided."""
        left = max(0.0, (self.closes_ts - self.ctx.now()) / 1000)
        waiter = asyncio.ensure_future(self.ctx.window(left))
        early = asyncio.ensure_future(self._all_decided.wait())
        try:
            await asyncio.wait({waiter, early}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in (waiter, early):
                if not f.done():
                    f.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await f
        if not await self.ctx.window(0):
            raise RoundEnded("round voided during a decision window")

    # --- decisions --------------------------------------------------------------------------

    def view(self, player: str) -> dict[str, Any] | None:
        """A player's hands and the decisions open to them now (simulation, support)."""
        bet_id = self.by_player.get(player)
        if bet_id is None:
            return None
        return {**self.play.bets[bet_id].view(), "dealer_up": self.play.dealer_up, "step": self.play.step,
                "allowed": self.play.allowed(bet_id) if self.open else []}

    async def act(self, player: str, action: Mapping[str, Any]) -> dict[str, Any]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        def answer(result: dict[str, Any] | None, err: BaseException | None) -> None:
            if not fut.done():
                fut.set_exception(err) if err is not None else fut.set_result(result or {})

        self.submit(player, action, answer)
        return await fut

    def submit(self, player: str, action: Mapping[str, Any], answer: Answer) -> None:
        # No task per decision: thousands come in within a second of a step opening, and each
        # is answered from the journal's commit callback (see `_answered`).
        key = action.get("idempotency_key")
        if isinstance(key, str) and key:
            self._submit_idempotent(player, key, action, answer)
        else:
            self._decide(player, action, answer)

    def _submit_idempotent(self, player: str, key: str, action: Mapping[str, Any], answer: Answer) -> None:
        """Same key + same body -> same answer; same key + other body -> 409 (as for bets).

        Kept for the round's life: a decision means nothing once its round has ended."""
        body = {k: v for k, v in action.items() if k != "idempotency_key"}
        sha = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        known = self._answers.get((player, key))
        if known is not None:
            if known[0] != sha:
                raise E.DomainError("idempotency_conflict", "Idempotency-Key reused with another body", 409)
            known[1].add_done_callback(functools.partial(_answer_from, answer))
            return
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        def first(result: dict[str, Any] | None, err: BaseException | None) -> None:
            if err is not None:
                fut.set_exception(err)
                fut.exception()  # retrieved: a retry may never come
            else:
                fut.set_result(result or {})
            answer(result, err)

        self._answers[(player, key)] = (sha, fut)
        try:
            self._decide(player, body, first)
        except E.DomainError:
            # Refusals change nothing and are not remembered: a retry is judged afresh.
            del self._answers[(player, key)]
            raise

    def _decide(self, player: str, action: Mapping[str, Any], answer: Answer) -> None:
        p = self.play
        bet_id = self.by_player.get(player)
        if bet_id is None:
            raise E.DomainError(BJ.NO_BET, "you have no hand in this round", 409)
        what = action.get("action")
        step = action.get("step")
        if step is not None and (not isinstance(step, int) or isinstance(step, bool)):
            raise E.DomainError(E.INVALID_REQUEST, "step must be an integer")
        if what not in BJ.ACTIONS:
            raise E.DomainError(BJ.UNKNOWN_ACTION, f"action must be one of {BJ.ACTIONS}")
        if not self.open or (step is not None and step != p.step) or self.ctx.now() > self.closes_ts:
            raise E.DomainError(BJ.DECISIONS_CLOSED, "no decision window is open for this step", 409,
                                step=p.step if self.open else None)
        try:
            added = p.check(bet_id, what)
        except BJ.Refused as r:
            raise E.DomainError(r.code, r.message, 409 if r.code in _CONFLICTS else 422) from None
        self.ctx.check_player(player)  # excluded or on a break: no decision (the hand stands)
        if added:
            self.ctx.check_extra_stake(player, added)  # funds, loss limits
        s = p.step
        data = {"bet_id": bet_id, "step": s, "action": what, "amount": added}
        # Appended (and the extra stake debited by the fold) at once, then taken by the play, in
        # this same synchronous step: `check` allowed it, so `decide` cannot refuse it now.
        self._inflight += 1
        try:
            self.ctx.record_soon(BJ.DECISION, data, functools.partial(self._answered, answer, data))
        except RoundEnded:
            self._settle_inflight()
            raise E.DomainError(BJ.DECISIONS_CLOSED, "the round has ended", 409, step=None) from None
        except BaseException:
            self._settle_inflight()
            raise
        self.journaled += 1
        p.decide(bet_id, what)
        self._waiting.discard(bet_id)
        if not self._waiting:
            self._all_decided.set()  # the step's card follows this decision's entry in the journal

    def _answered(self, answer: Answer, data: dict[str, Any], e: dict[str, Any], err: BaseException | None) -> None:
        """The decision's entry is durable (or the journal failed): answer, then count it off.

        Invariant (a player's mirror of its hand relies on it): the answer is sent before the
        step's card, which `run` publishes only once no decision is in flight (`_acks_sent`)."""
        try:
            if err is None:
                answer({**data, "seq": e["seq"], "stake": self.bet_of[data["bet_id"]].stake}, None)
            else:
                answer(None, err)
        finally:
            self._settle_inflight()

    def _settle_inflight(self) -> None:
        self._inflight -= 1
        if not self._inflight:
            self._idle.set()


def _answer_from(answer: Answer, fut: asyncio.Future[dict[str, Any]]) -> None:
    """A retry of an idempotent decision: the first one's answer, once it has one."""
    err = fut.exception()
    answer(None, err) if err is not None else answer(fut.result(), None)
