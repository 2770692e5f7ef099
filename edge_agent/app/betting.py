"""Betting: admission of a bet against the table, the game and the player's limits; idempotent
HTTP bets; the bet metrics (counted here and nowhere else).

A bet is acknowledged only once durable: `bet` and `bet_idempotent` return then, `submit` and
`submit_batch` return a future resolved then (the WebSocket pipelines bets that way: a frame is
journaled at once and answered when its group commit lands, in whatever order commits land).
"""
from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from typing import Any

from contract import journal as J
from edge_agent import metrics as M
from edge_agent.app.engine import Engine
from edge_agent.app.ports import IdempotentAnswer
from edge_agent.domain import errors as E
from edge_agent.domain import games
from edge_agent.domain import responsible as RG
from edge_agent.domain import state as ST
from edge_agent.journal.store import JournalFailed

MAX_PLAYER_SEED = 64
IDEMPOTENCY_CONFLICT = "idempotency_conflict"


def positive_amount(amount: Any) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise E.DomainError(E.INVALID_AMOUNT, "amount must be a positive integer of minor units")
    if amount > 10**15:
        raise E.DomainError(E.INVALID_AMOUNT, "amount is implausibly large")
    return amount


class Betting:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._idem_inflight: dict[tuple[str, str], tuple[str, asyncio.Future[tuple[int, dict[str, Any]]]]] = {}

    # --- admission ----------------------------------------------------------------------------

    def place_bet(self, psn: str, table_id: Any, spot: Any, amount: Any, *, rules_version: Any = None,
                  player_seed: Any = "", idem: tuple[str, str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Validate and journal one bet: (entry, receipt). Not yet durable (see `bet`, `submit`)."""
        try:
            e, receipt = self._place(psn, table_id, spot, amount, rules_version, player_seed, idem)
        except E.DomainError as err:
            self._count(table_id, err.code)
            raise
        self._count(table_id, "accepted")
        return e, receipt

    def _place(self, psn: str, table_id: Any, spot: Any, amount: Any, rules_version: Any, player_seed: Any,
               idem: tuple[str, str] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        eng = self._engine
        amount = positive_amount(amount)
        t = eng.table(table_id)
        if not isinstance(player_seed, str) or len(player_seed) > MAX_PLAYER_SEED:
            raise E.DomainError(E.INVALID_REQUEST, f"player_seed must be a string of at most {MAX_PLAYER_SEED}")
        now = eng.clock()
        rg = eng.state.player(psn)
        RG.check_can_play(rg, now)
        r = t.round
        if not t.accepting:
            raise E.DomainError(E.TABLE_NOT_LIVE, "table is not live", 409)
        if r is None or r.status != ST.OPEN or now > r.closes_ts:
            raise E.DomainError(E.BETTING_CLOSED, "betting is closed for this round", 409)
        if rules_version is not None and rules_version != r.rules_version:
            raise E.DomainError(E.STALE_RULES, f"rules version {rules_version!r} is not the current "
                                f"{r.rules_version!r}", 409, current=r.rules_version)
        game = games.get(r.game)
        if not game.valid_spot(spot):
            raise E.DomainError(E.UNKNOWN_SPOT, f"unknown spot {spot!r} for {r.game}")
        lim = t.rules.limits
        if amount < lim.min_bet:
            raise E.DomainError(E.BELOW_TABLE_MIN, f"minimum bet is {lim.min_bet}", min_bet=lim.min_bet)
        if r.spot_staked.get((psn, spot), 0) + amount > lim.max_bet_per_spot:
            raise E.DomainError(E.ABOVE_SPOT_MAX, f"maximum per spot is {lim.max_bet_per_spot}",
                                max_bet_per_spot=lim.max_bet_per_spot)
        if r.staked.get(psn, 0) + amount > lim.max_per_round:
            raise E.DomainError(E.ABOVE_ROUND_MAX, f"maximum per round is {lim.max_per_round}",
                                max_per_round=lim.max_per_round)
        game.admit(r, psn, spot, amount)
        RG.check_bet(rg, amount, eng.state.in_play(psn), now)
        cash = eng.state.cash(psn)
        if cash < amount:
            raise E.DomainError(E.INSUFFICIENT_FUNDS, "insufficient funds", 402, balance=cash)
        currency = eng.config.currency
        bet_id = f"{eng.config.edge_id}-{{}}"

        def data(seq: int) -> dict[str, Any]:
            return {"bet_id": bet_id.format(seq), "table_id": table_id, "chain_id": r.chain_id, "n": r.n,
                    "player": psn, "spot": spot, "amount": amount, "currency": currency, "player_seed": player_seed}

        def receipt(seq: int) -> dict[str, Any]:
            return {"bet_id": bet_id.format(seq), "table_id": table_id, "chain_id": r.chain_id, "n": r.n,
                    "spot": spot, "amount": amount, "currency": currency, "seq": seq, "balance": cash - amount}

        # The answer to an Idempotency-Key commits in the same transaction as the bet.
        records = (lambda seq: [IdempotentAnswer(psn, idem[0], idem[1], 201, receipt(seq))]) if idem else ()
        e = eng.record(J.BET_PLACED, data, records)
        return e, receipt(e["seq"])

    def check_extra_stake(self, t: ST.Table, psn: str, amount: int) -> None:
        """A stake added in a play phase (double, split): the same money rules as a bet."""
        eng = self._engine
        amount = positive_amount(amount)
        r = t.round
        if r is None:
            raise E.DomainError(E.BETTING_CLOSED, "no round in progress", 409)
        # Table limits bind the main stake only (docs/FAIRNESS.md): a player may double or split it.
        RG.check_bet(eng.state.player(psn), amount, eng.state.in_play(psn), eng.clock())
        cash = eng.state.cash(psn)
        if cash < amount:
            raise E.DomainError(E.INSUFFICIENT_FUNDS, "insufficient funds", 402, balance=cash)

    def _count(self, table_id: Any, result: str) -> None:
        # Only known tables become label values: request input must not grow the series.
        label = table_id if isinstance(table_id, str) and table_id in self._engine.state.tables else "unknown"
        M.BETS.counts[(label, result)] += 1

    # --- acknowledged once durable ------------------------------------------------------------

    async def bet(self, psn: str, table_id: Any, spot: Any, amount: Any, **kw: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        e, receipt = self.place_bet(psn, table_id, spot, amount, **kw)
        await self._engine.durable(e)
        M.BET_ACK.observe(time.perf_counter() - t0)
        return receipt

    def submit(self, psn: str, req: Any) -> asyncio.Future[dict[str, Any]]:
        """Journal one bet (a JSON object) now; the future gives its receipt once durable.

        A refusal raises DomainError at once (nothing changed); a journal failure fails the future."""
        t0 = time.perf_counter()
        receipt = self._place_req(psn, req)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._engine.store.when_durable(receipt["seq"], self._resolve(fut, receipt, t0))
        return fut

    def submit_batch(self, psn: str, reqs: list[Any]) -> asyncio.Future[list[dict[str, Any]]]:
        """Several chips at once, each accepted or refused on its own: the future gives, once every
        accepted one is durable, a receipt or `{"error": {...}}` per request, in request order."""
        t0 = time.perf_counter()
        results: list[dict[str, Any]] = []
        last = 0
        for req in reqs:
            try:
                receipt = self._place_req(psn, req)
            except E.DomainError as err:
                results.append({"error": err.as_dict()})
                continue
            results.append(receipt)
            last = receipt["seq"]
        fut: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self._engine.store.when_durable(last, self._resolve(fut, results, t0))
        return fut

    def _place_req(self, psn: str, req: Any) -> dict[str, Any]:
        if not isinstance(req, Mapping):
            raise E.DomainError(E.INVALID_REQUEST, "a bet is a JSON object")
        return self.place_bet(psn, req.get("table_id"), req.get("spot"), req.get("amount"),
                              rules_version=req.get("rules_version"), player_seed=req.get("player_seed", ""))[1]

    @staticmethod
    def _resolve(fut: asyncio.Future[Any], value: Any, t0: float) -> Any:
        def done(err: BaseException | None) -> None:
            if fut.done():
                return
            if err is None:
                M.BET_ACK.observe(time.perf_counter() - t0)
                fut.set_result(value)
            else:
                fut.set_exception(JournalFailed(str(err)))
        return done

    async def bet_idempotent(self, psn: str, key: str, body: bytes, req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """HTTP bets: same key + same body -> same answer; same key + other body -> 409."""
        body_sha = hashlib.sha256(body).hexdigest()
        inflight = self._idem_inflight.get((psn, key))
        if inflight is not None:
            sha, pending = inflight
            if sha != body_sha:
                raise E.DomainError(IDEMPOTENCY_CONFLICT, "Idempotency-Key reused with another body", 409)
            return await asyncio.shield(pending)
        answer = self._engine.store.idempotent_answer(psn, key)
        if answer is not None:
            if answer.body_sha != body_sha:
                raise E.DomainError(IDEMPOTENCY_CONFLICT, "Idempotency-Key reused with another body", 409)
            return answer.status, answer.response
        fut: asyncio.Future[tuple[int, dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self._idem_inflight[(psn, key)] = (body_sha, fut)
        try:
            try:
                receipt = await self.bet(psn, req.get("table_id"), req.get("spot"), req.get("amount"),
                                         rules_version=req.get("rules_version"),
                                         player_seed=req.get("player_seed", ""), idem=(key, body_sha))
            except Exception as err:
                # Refusals change nothing and are not remembered: a retry is judged afresh.
                fut.set_exception(err)
                fut.exception()
                raise
            result = (201, receipt)
            fut.set_result(result)
            return result
        finally:
            self._idem_inflight.pop((psn, key), None)
