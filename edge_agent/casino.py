"""The casino: the edge's application service.

Every command follows one shape: validate against the in-memory state (a DomainError leaves
everything untouched), then append journal entries and fold them into the state in the same
synchronous step, so concurrent requests never interleave half-way; then, outside, await the
journal's durability before answering. State is only ever changed through journal entries.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable
from typing import Any

import structlog

from contract import fairness
from contract import journal as J
from contract import sync as S
from contract.pseudonym import pseudonym
from edge_agent import metrics as M
from edge_agent.config import EdgeConfig
from edge_agent.domain import errors as E
from edge_agent.domain import responsible as RG
from edge_agent.domain import state as ST
from edge_agent.events import EventHub
from edge_agent.journal.store import JournalStore

log = structlog.get_logger("casino")

MAX_PLAYER_SEED = 64


def _positive_int(amount: Any) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise E.DomainError(E.INVALID_AMOUNT, "amount must be a positive integer of minor units")
    if amount > 10**15:
        raise E.DomainError(E.INVALID_AMOUNT, "amount is implausibly large")
    return amount


class Casino:
    def __init__(self, config: EdgeConfig, store: JournalStore | None = None, *,
                 clock: Callable[[], int] | None = None, random_bytes: Callable[[int], bytes] = os.urandom):
        self.config = config
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.store = store or JournalStore(config.db_path, clock=self.clock)
        self.random_bytes = random_bytes
        self.residency_key = config.residency_key()
        self.state = ST.EdgeState(config.table_specs(), config.rg_defaults())
        self.events = EventHub()
        self._seeds: dict[tuple[str, str], list[bytes]] = {}
        self._idem_inflight: dict[tuple[str, str], tuple[str, asyncio.Future[Any]]] = {}
        self._psn_cache: dict[str, str] = {}
        self._table_wakeup: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self.notices: dict[str, list[dict[str, Any]]] = {}
        self._replay()

    # --- start-up and shutdown ----------------------------------------------------------------

    def _replay(self) -> None:
        """Rebuild the state from the journal, checking the hash chain as it goes."""
        prev = J.GENESIS_PREV
        for e in self.store.iter_all():
            if e["prev"] != prev or J.entry_hash(e["seq"], e["ts"], e["kind"], e["data"], e["prev"]) != e["hash"]:
                raise RuntimeError(f"journal hash chain broken at seq {e['seq']}: refusing to start")
            self.state.apply(e)
            prev = e["hash"]
        for table_id, chain_id, seed_top, length in self.store.query(
                "SELECT table_id, chain_id, seed_top, length FROM chain_secrets"):
            t = self.state.tables.get(table_id)
            if t and t.chain and t.chain.chain_id == chain_id:
                self._seeds[(table_id, chain_id)] = fairness.derive_chain(bytes.fromhex(seed_top), length)
        M.JOURNAL_HEAD.set(self.state.seq)

    def _append(self, kind: str, data: dict[str, Any], side_ops: list[Any] | None = None) -> dict[str, Any]:
        e = self.store.append(kind, data, side_ops)
        self.state.apply(e)
        return e

    async def start(self, run_tables: bool = True) -> None:
        self.store.bind_loop(asyncio.get_running_loop())
        self.store.on_commit.append(lambda rows, secs: M.JOURNAL_COMMIT.observe(secs))
        self._sync_table_rules()
        self._recover_rounds()
        for t in self.state.tables.values():
            # After a restart the studio feed is unknown until the media path reports it.
            if t.spec.requires_feed and t.feed_live:
                self._append(ST.TABLE_FEED, {"table_id": t.spec.table_id, "live": False, "reason": "edge_start"})
        await self.store.durable(self.store.seq)
        self._running = True
        if run_tables:
            for table_id in (t.table_id for t in self.config.tables):
                self._table_wakeup[table_id] = asyncio.Event()
                self._tasks.append(asyncio.create_task(self._table_loop(table_id), name=f"table-{table_id}"))

    async def stop(self) -> None:
        """Graceful stop (SIGTERM): void rounds still taking bets, settle closed ones, flush."""
        self._running = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._tasks.clear()
        # A fenced journal takes no entries: its open rounds are recovered at the next start,
        # once it has been reconciled with the cloud.
        if self.store.fence_reason is None:
            self._recover_rounds(reason="edge_shutdown")
        await self.store.durable(self.store.seq)

    def close(self) -> None:
        self.store.close()

    def _sync_table_rules(self) -> None:
        """Journal the configured rule set of a table when the journal does not hold it yet.

        A new version applies from the next round on: terms never change mid-round."""
        for spec in self.config.table_specs():
            t = self.state.tables[spec.table_id]
            if not t.rules_journaled or t.rules != spec.rules:
                self._append(ST.TABLE_RULES, {"table_id": spec.table_id, "version": spec.rules.version,
                                              "game": spec.rules.game,
                                              "limits": spec.rules.describe()["limits"]})

    def _recover_rounds(self, reason: str = "edge_restart") -> None:
        """Never leave a round half-done: settle one whose betting closed, void one still open."""
        for t in self.state.tables.values():
            r = t.round
            if r is None:
                continue
            if r.status == ST.CLOSED and (t.spec.table_id, r.chain_id) in self._seeds:
                self._settle(t)
            elif r.status == ST.CLOSED:
                # The chain's secret is not in this journal (its entries came back from the
                # cloud's copy, which never holds secrets): no honest outcome exists, so refund.
                self._void(t, "seed_lost")
            else:
                self._void(t, reason)

    # --- rounds -------------------------------------------------------------------------------

    def _ensure_chain(self, t: ST.Table) -> ST.Chain:
        if t.chain is None or t.chain.used >= t.chain.length or (t.spec.table_id, t.chain.chain_id) not in self._seeds:
            length = self.config.chain_length
            seed_top = self.random_bytes(32)
            chain_id = secrets.token_hex(8)
            seeds = fairness.derive_chain(seed_top, length)
            self._seeds[(t.spec.table_id, chain_id)] = seeds
            # The secret and its commitment commit together; the commitment precedes any use.
            self._append(J.FAIRNESS_CHAIN,
                         {"table_id": t.spec.table_id, "chain_id": chain_id, "length": length,
                          "commitment": seeds[0].hex()},
                         [("INSERT INTO chain_secrets VALUES (?,?,?,?)",
                           (t.spec.table_id, chain_id, seed_top.hex(), length)),
                          ("INSERT OR REPLACE INTO chains VALUES (?,?,?)",
                           (t.spec.table_id, chain_id, self.store.seq + 1))])
        assert t.chain is not None
        return t.chain

    def open_round(self, table_id: str) -> ST.Round:
        t = self.state.tables[table_id]
        if t.round is not None:
            raise E.DomainError(E.INVALID_REQUEST, "a round is already in progress")
        chain = self._ensure_chain(t)
        now = self.clock()
        closes = now + int(t.spec.betting_window_s * 1000)
        self._append(J.ROUND_OPENED, {"table_id": table_id, "chain_id": chain.chain_id, "n": chain.used + 1,
                                      "game": t.spec.game, "rules_version": t.rules.version, "closes_ts": closes})
        r = t.round
        assert r is not None
        self.events.publish(f"table:{table_id}", {
            "type": "round.opened", "table_id": table_id, "chain_id": r.chain_id, "n": r.n, "game": r.game,
            "rules_version": r.rules_version, "closes_ts": closes, "commitment": chain.commitment,
            "chain_length": chain.length,
        })
        return r

    def close_round(self, table_id: str) -> None:
        t = self.state.tables[table_id]
        r = t.round
        if r is None or r.status != ST.OPEN:
            return
        self._append(ST.ROUND_CLOSED, {"table_id": table_id, "chain_id": r.chain_id, "n": r.n})
        self.events.publish(f"table:{table_id}", {"type": "round.closed", "table_id": table_id, "n": r.n})

    def _settle(self, t: ST.Table) -> dict[str, Any]:
        r = t.round
        assert r is not None
        seed = self._seeds[(t.spec.table_id, r.chain_id)][r.n]
        cs = fairness.client_seed((b.bet_id, b.player_seed) for b in r.bets)
        result = fairness.outcome(r.game, seed, cs, r.n)
        payouts = [{"bet_id": b.bet_id, "payout": fairness.payout(r.game, b.spot, b.amount, result)} for b in r.bets]
        bets = list(r.bets)
        e = self._append(J.ROUND_SETTLED, {
            "table_id": r.table_id, "chain_id": r.chain_id, "n": r.n, "game": r.game,
            "server_seed": seed.hex(), "client_seed": cs, "outcome": result, "payouts": payouts,
        }, [self._round_index(r, "settled", None)])
        e["_bets"] = bets  # for announcing per-player results after durability (not journaled)
        return e

    def _round_index(self, r: ST.Round, status: str, reason: str | None) -> tuple[str, tuple[Any, ...]]:
        # Committed with the entry that ends the round; last_seq is that entry's seq.
        return ("INSERT OR REPLACE INTO rounds VALUES (?,?,?,?,?,?,?,?)",
                (r.table_id, r.chain_id, r.n, r.game, r.opened_seq, self.store.seq + 1, status, reason))

    def _void(self, t: ST.Table, reason: str) -> dict[str, Any] | None:
        r = t.round
        if r is None:
            return None
        bets = list(r.bets)
        e = self._append(J.ROUND_VOIDED, {
            "table_id": r.table_id, "chain_id": r.chain_id, "n": r.n, "reason": reason,
            "refunds": [{"bet_id": b.bet_id, "amount": b.amount} for b in bets],
        }, [self._round_index(r, "voided", reason)])
        self._announce_void(e, bets)
        return e

    def _announce_void(self, e: dict[str, Any], bets: list[ST.Bet]) -> None:
        d = e["data"]
        self.events.publish(f"table:{d['table_id']}", {"type": "round.voided", "table_id": d["table_id"],
                                                       "n": d["n"], "reason": d["reason"]})
        for psn in {b.player for b in bets}:
            refunded = sum(b.amount for b in bets if b.player == psn)
            notice = {"type": "refund", "table_id": d["table_id"], "n": d["n"], "amount": refunded,
                      "reason": d["reason"], "balance": self.state.cash(psn), "seq": e["seq"]}
            self.events.publish(f"player:{psn}", notice)
            if not self._running:
                # Voided while nobody could be listening (start-up recovery): told at next connect.
                self.notices.setdefault(psn, []).append(notice)
        M.ROUNDS.labels(table=d["table_id"], result="voided").inc()

    async def settle_round(self, table_id: str) -> dict[str, Any]:
        t = self.state.tables[table_id]
        self.close_round(table_id)
        e = self._settle(t)
        bets: list[ST.Bet] = e.pop("_bets")
        await self.store.durable(e["seq"])  # the seed is public only once the settlement is on disk
        d = e["data"]
        t.last_result = {"n": d["n"], "outcome": d["outcome"], "chain_id": d["chain_id"]}
        self.events.publish(f"table:{table_id}", {
            "type": "round.settled", "table_id": table_id, "chain_id": d["chain_id"], "n": d["n"],
            "game": d["game"], "outcome": d["outcome"], "server_seed": d["server_seed"],
            "client_seed": d["client_seed"], "seq": e["seq"],
        })
        won: dict[str, int] = {}
        staked: dict[str, int] = {}
        for b, p in zip(bets, d["payouts"]):
            won[b.player] = won.get(b.player, 0) + p["payout"]
            staked[b.player] = staked.get(b.player, 0) + b.amount
        for psn in won:
            self.events.publish(f"player:{psn}", {
                "type": "settlement", "table_id": table_id, "n": d["n"], "staked": staked[psn],
                "payout": won[psn], "balance": self.state.cash(psn),
                "net_position": self.state.player(psn).session_net,
            })
        M.ROUNDS.labels(table=table_id, result="settled").inc()
        return e

    async def _table_loop(self, table_id: str) -> None:
        t = self.state.tables[table_id]
        wake = self._table_wakeup[table_id]
        while self._running:
            try:
                if not t.accepting:
                    wake.clear()
                    await wake.wait()
                    continue
                r = self.open_round(table_id)
                await self._sleep_until(wake, t.spec.betting_window_s, lambda: t.round is not r)
                if t.round is r:
                    await self.settle_round(table_id)
                    await asyncio.sleep(t.spec.reveal_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("table loop error", table=table_id)
                await asyncio.sleep(1)

    @staticmethod
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

    def _wake(self, table_id: str) -> None:
        ev = self._table_wakeup.get(table_id)
        if ev is not None:
            ev.set()

    # --- the studio feed and operator actions -------------------------------------------------

    async def feed_up(self, table_id: str) -> None:
        t = self._table(table_id)
        if not t.feed_live:
            e = self._append(ST.TABLE_FEED, {"table_id": table_id, "live": True, "reason": "feed_resumed"})
            await self.store.durable(e["seq"])
            self.events.publish(f"table:{table_id}", {"type": "table.live", "table_id": table_id})
            self._wake(table_id)

    async def feed_down(self, table_id: str, reason: str = "studio_feed_lost") -> None:
        """The feed and the round are one thing to the player: no picture, no round."""
        t = self._table(table_id)
        if t.feed_live:
            self._append(ST.TABLE_FEED, {"table_id": table_id, "live": False, "reason": reason})
        self._void(t, reason)
        await self.store.durable(self.store.seq)
        self.events.publish(f"table:{table_id}", {"type": "table.down", "table_id": table_id, "reason": reason})
        self._wake(table_id)

    async def void_round(self, table_id: str, reason: str, by: str) -> dict[str, Any]:
        t = self._table(table_id)
        if t.round is None:
            raise E.DomainError(E.NOT_FOUND, "no round in progress", 404)
        e = self._void(t, f"{reason}")
        assert e is not None
        await self.store.durable(e["seq"])
        self._wake(table_id)
        return e

    async def set_table_enabled(self, table_id: str, enabled: bool, reason: str, by: str) -> None:
        t = self._table(table_id)
        self._append(ST.TABLE_STATUS, {"table_id": table_id, "enabled": enabled, "reason": reason, "by": by})
        if not enabled:
            self._void(t, "table_disabled")
        await self.store.durable(self.store.seq)
        self._wake(table_id)

    def _metric_table(self, table_id: Any) -> str:
        # Only known tables become label values: request input must not grow the series.
        return table_id if isinstance(table_id, str) and table_id in self.state.tables else "unknown"

    def _table(self, table_id: str) -> ST.Table:
        t = self.state.tables.get(table_id)
        if t is None:
            raise E.DomainError(E.UNKNOWN_TABLE, f"unknown table {table_id!r}", 404)
        return t

    # --- players ------------------------------------------------------------------------------

    def pseudonym(self, player_id: str) -> str:
        psn = self._psn_cache.get(player_id)
        if psn is None:
            psn = self._psn_cache[player_id] = pseudonym(self.residency_key, player_id)
        return psn

    def ensure_player(self, player_id: str, profile: dict[str, Any] | None = None) -> str:
        """Register a player on first sight: personal data in `players`, a pseudonym in the journal."""
        psn = self.pseudonym(player_id)
        if psn not in self.state.players:
            p = profile or {}
            self._append(ST.PLAYER_REGISTERED, {"player": psn, "jurisdiction": self.config.jurisdiction}, [(
                "INSERT OR IGNORE INTO players VALUES (?,?,?,?,?,?,?)",
                (player_id, psn, p.get("display_name"), p.get("email"), p.get("birth_date"), p.get("address"),
                 self.clock()),
            )])
        return psn

    def start_session(self, psn: str) -> str:
        rg = self.state.player(psn)
        RG.check_can_play(rg, self.clock())
        if rg.session_id is None:
            self._append(ST.SESSION_STARTED, {"player": psn, "session_id": secrets.token_hex(8)})
        assert rg.session_id is not None
        return rg.session_id

    def end_session(self, psn: str, reason: str = "logout") -> None:
        rg = self.state.player(psn)
        if rg.session_id is not None:
            self._append(ST.SESSION_ENDED, {"player": psn, "session_id": rg.session_id, "reason": reason})

    # --- bets ---------------------------------------------------------------------------------

    def place_bet(self, psn: str, table_id: Any, spot: Any, amount: Any, *, rules_version: Any = None,
                  player_seed: Any = "", idem: tuple[str, str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Validate and journal one bet: (entry, receipt). Durable once the store says so."""
        amount = _positive_int(amount)
        t = self.state.tables.get(table_id) if isinstance(table_id, str) else None
        if t is None:
            raise E.DomainError(E.UNKNOWN_TABLE, f"unknown table {table_id!r}", 404)
        if not isinstance(player_seed, str) or len(player_seed) > MAX_PLAYER_SEED:
            raise E.DomainError(E.INVALID_REQUEST, f"player_seed must be a string of at most {MAX_PLAYER_SEED}")
        now = self.clock()
        rg = self.state.player(psn)
        RG.check_can_play(rg, now)
        r = t.round
        if not t.accepting:
            raise E.DomainError(E.TABLE_NOT_LIVE, "table is not live", 409)
        if r is None or r.status != ST.OPEN or now > r.closes_ts:
            raise E.DomainError(E.BETTING_CLOSED, "betting is closed for this round", 409)
        if rules_version is not None and rules_version != r.rules_version:
            raise E.DomainError(E.STALE_RULES, f"rules version {rules_version!r} is not the current "
                                f"{r.rules_version!r}", 409, current=r.rules_version)
        if not fairness.valid_spot(r.game, spot):
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
        RG.check_bet(rg, amount, self.state.in_play(psn), now)
        cash = self.state.cash(psn)
        if cash < amount:
            raise E.DomainError(E.INSUFFICIENT_FUNDS, "insufficient funds", 402, balance=cash)
        seq = self.store.seq + 1
        data = {"bet_id": f"{self.config.edge_id}-{seq}", "table_id": table_id, "chain_id": r.chain_id, "n": r.n,
                "player": psn, "spot": spot, "amount": amount, "currency": self.config.currency,
                "player_seed": player_seed}
        receipt = {"bet_id": data["bet_id"], "table_id": table_id, "chain_id": r.chain_id, "n": r.n, "spot": spot,
                   "amount": amount, "currency": self.config.currency, "seq": seq, "balance": cash - amount}
        side_ops = None
        if idem is not None:
            # The answer to an Idempotency-Key commits in the same transaction as the bet.
            side_ops = [("INSERT INTO idempotency VALUES (?,?,?,?,?)",
                         (psn, idem[0], idem[1], 201, json.dumps(receipt)))]
        e = self._append(J.BET_PLACED, data, side_ops)
        return e, receipt

    async def bet(self, psn: str, table_id: Any, spot: Any, amount: Any, **kw: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            e, receipt = self.place_bet(psn, table_id, spot, amount, **kw)
        except E.DomainError as err:
            M.BETS.counts[(self._metric_table(table_id), err.code)] += 1
            raise
        await self.store.durable(e["seq"])
        M.BETS.counts[(self._metric_table(table_id), "accepted")] += 1
        M.BET_ACK.observe(time.perf_counter() - t0)
        return receipt

    async def bet_idempotent(self, psn: str, key: str, body: bytes, req: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """HTTP bets: same key + same body -> same answer; same key + other body -> 409."""
        table_id = req.get("table_id")
        body_sha = hashlib.sha256(body).hexdigest()
        inflight = self._idem_inflight.get((psn, key))
        if inflight is not None:
            sha, fut = inflight
            if sha != body_sha:
                raise E.DomainError("idempotency_conflict", "Idempotency-Key reused with another body", 409)
            return await asyncio.shield(fut)
        row = self.store.query("SELECT body_sha, status, response FROM idempotency WHERE player=? AND key=?",
                               (psn, key))
        if row:
            if row[0][0] != body_sha:
                raise E.DomainError("idempotency_conflict", "Idempotency-Key reused with another body", 409)
            return row[0][1], json.loads(row[0][2])
        fut: asyncio.Future[tuple[int, dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self._idem_inflight[(psn, key)] = (body_sha, fut)
        try:
            try:
                e, receipt = self.place_bet(psn, req.get("table_id"), req.get("spot"), req.get("amount"),
                                            rules_version=req.get("rules_version"),
                                            player_seed=req.get("player_seed", ""), idem=(key, body_sha))
                await self.store.durable(e["seq"])
                M.BETS.counts[(self._metric_table(table_id), "accepted")] += 1
            except E.DomainError as err:
                # Refusals change nothing and are not remembered: a retry is judged afresh.
                M.BETS.counts[(self._metric_table(table_id), err.code)] += 1
                fut.set_exception(err)
                fut.exception()
                raise
            result = (201, receipt)
            fut.set_result(result)
            return result
        finally:
            self._idem_inflight.pop((psn, key), None)

    # --- wallet -------------------------------------------------------------------------------

    def request_deposit(self, psn: str, amount: Any, method: str = "card") -> dict[str, Any]:
        amount = _positive_int(amount)
        RG.check_deposit(self.state.player(psn), amount, self.clock())
        deposit_id = f"dep-{self.config.edge_id}-{secrets.token_hex(8)}"
        return self._append(S.DEPOSIT_REQUESTED, {"deposit_id": deposit_id, "player": psn, "amount": amount,
                                                  "currency": self.config.currency, "method": str(method)[:32]})

    def credit_deposit(self, psn: str, deposit_id: str, amount: int) -> dict[str, Any]:
        """A payment confirmed upstream: credit it, or refuse it when a limit forbids it."""
        amount = _positive_int(amount)
        data = {"deposit_id": deposit_id, "player": psn, "amount": amount, "currency": self.config.currency}
        try:
            RG.check_deposit(self.state.player(psn), amount, self.clock())
        except E.DomainError as err:
            return self._append(S.DEPOSIT_REFUSED, {**data, "reason": err.code})
        e = self._append(S.DEPOSIT_CREDITED, data)
        self.events.publish(f"player:{psn}", {"type": "deposit", "deposit_id": deposit_id, "amount": amount,
                                              "balance": self.state.cash(psn)})
        return e

    def request_withdrawal(self, psn: str, amount: Any, rail: str = "bank") -> dict[str, Any]:
        amount = _positive_int(amount)
        if rail not in ("bank", "crypto"):
            raise E.DomainError(E.INVALID_REQUEST, "rail must be bank or crypto")
        if self.state.cash(psn) < amount:
            raise E.DomainError(E.INSUFFICIENT_FUNDS, "insufficient funds", 402, balance=self.state.cash(psn))
        wid = f"wd-{self.config.edge_id}-{secrets.token_hex(8)}"
        return self._append(S.WITHDRAWAL_REQUESTED, {"withdrawal_id": wid, "player": psn, "amount": amount,
                                                     "currency": self.config.currency, "rail": rail})

    def request_kyc(self, psn: str, document: bytes) -> dict[str, Any]:
        """Identity documents stay in-country; the cloud gets only a reference to the check."""
        if not document or len(document) > 1_000_000:
            raise E.DomainError(E.INVALID_REQUEST, "a KYC submission is 1 byte to 1 MB")
        reference = "kyc-" + hashlib.sha256(psn.encode() + document).hexdigest()[:24]
        return self._append(S.KYC_REQUESTED, {"player": psn, "reference": reference}, [(
            "INSERT OR REPLACE INTO kyc_documents VALUES (?,?,?,?)", (reference, psn, document, self.clock()))])

    # --- responsible gambling -----------------------------------------------------------------

    def set_limit(self, psn: str, kind: str, period: str, amount: Any) -> dict[str, Any]:
        RG.validate_limit_request(kind, period, amount)
        now = self.clock()
        lim = self.state.player(psn).limit(kind, period)
        eff = RG.limit_change_effective_ts(lim, amount, now)
        return self._append(ST.LIMITS_CHANGED, {"player": psn, "limit": kind, "period": period, "amount": amount,
                                                "effective_ts": eff})

    def set_reality_check(self, psn: str, minutes: Any) -> dict[str, Any]:
        if minutes is not None and (not isinstance(minutes, int) or isinstance(minutes, bool)
                                    or not 1 <= minutes <= 24 * 60):
            raise E.DomainError(E.INVALID_REQUEST, "reality_check_min must be 1..1440 minutes or null")
        return self._append(ST.PLAYER_SETTINGS, {"player": psn, "reality_check_min": minutes})

    def exclude(self, psn: str, kind: str, duration: str, origin: str | None = None,
                until_ts: int | None = None) -> dict[str, Any]:
        """A break or a self-exclusion: the session ends and the player's open bets are refunded."""
        spans = RG.BREAKS if kind == "break" else RG.EXCLUSIONS
        if kind not in ("break", "self_exclusion"):
            raise E.DomainError(E.INVALID_REQUEST, "kind must be break or self_exclusion")
        if until_ts is None:
            if duration not in spans:
                raise E.DomainError(E.INVALID_REQUEST, f"duration must be one of {tuple(spans)}")
            until_ts = self.clock() + spans[duration]
        e = self._append(S.PLAYER_EXCLUDED, {"player": psn, "until_ts": until_ts, "kind": kind,
                                             "duration": duration, "origin": origin or self.config.edge_id})
        # Bets in rounds still running are refunded by voiding those rounds (CONTRACT: a round is
        # settled whole or voided whole; the verifier pays every bet of a settled round).
        for t in self.state.tables.values():
            if t.round is not None and t.round.staked.get(psn):
                self._void(t, "player_excluded")
                self._wake(t.spec.table_id)
        self.events.publish(f"player:{psn}", {"type": "session.ended", "reason": kind, "until_ts": until_ts})
        return e

    # --- commands from the control plane ------------------------------------------------------

    async def apply_command(self, cmd: S.Command) -> list[dict[str, Any]]:
        """Apply a cloud command once (by id); the journal records that it was applied."""
        if cmd.id in self.state.applied_commands:
            return []
        out: list[dict[str, Any]] = []
        if isinstance(cmd, S.KycResult):
            out.append(self._append(S.KYC_UPDATED, {"player": cmd.player, "status": cmd.status,
                                                    "reference": cmd.reference}))
        elif isinstance(cmd, S.DepositCredit):
            if self.state.deposits.get(cmd.deposit_id) not in ("credited", "refused", "declined"):
                out.append(self.credit_deposit(cmd.player, cmd.deposit_id, cmd.amount))
        elif isinstance(cmd, S.DepositDeclined):
            if self.state.deposits.get(cmd.deposit_id) == "requested":
                out.append(self._append(S.DEPOSIT_DECLINED, {
                    "deposit_id": cmd.deposit_id, "player": cmd.player, "amount": cmd.amount,
                    "currency": self.config.currency, "reason": cmd.reason}))
                self.events.publish(f"player:{cmd.player}", {"type": "deposit.declined", "deposit_id": cmd.deposit_id,
                                                             "reason": cmd.reason})
        elif isinstance(cmd, S.PayoutResult):
            w = self.state.withdrawals.get(cmd.withdrawal_id)
            if w is not None and w.status == "requested":
                base = {"withdrawal_id": w.withdrawal_id, "player": w.player, "amount": w.amount,
                        "currency": self.config.currency}
                if cmd.status == "paid":
                    out.append(self._append(S.WITHDRAWAL_PAID, {**base, "rail_ref": cmd.rail_ref}))
                else:
                    out.append(self._append(S.WITHDRAWAL_RELEASED, {**base, "reason": cmd.reason}))
                self.events.publish(f"player:{w.player}", {"type": "withdrawal", "withdrawal_id": w.withdrawal_id,
                                                           "status": "paid" if cmd.status == "paid" else "refused",
                                                           "reason": cmd.reason,
                                                           "balance": self.state.cash(w.player)})
        elif isinstance(cmd, S.PlayerExclude):
            rg = self.state.player(cmd.player)
            if rg.excluded_until < cmd.until_ts:
                out.append(self.exclude(cmd.player, "self_exclusion", "remote", origin=cmd.origin_edge,
                                        until_ts=cmd.until_ts))
        out.append(self._append(S.COMMAND_APPLIED, {"command_id": cmd.id, "type": cmd.type}))
        await self.store.durable(out[-1]["seq"])
        return out

    # --- views --------------------------------------------------------------------------------

    def wallet(self, psn: str) -> dict[str, Any]:
        from edge_agent.domain import ledger as L

        rg = self.state.player(psn)
        now = self.clock()
        return {
            "player": psn, "currency": self.config.currency, "balance": self.state.cash(psn),
            "in_play": self.state.in_play(psn), "pending_withdrawal": self.state.ledger.balance(L.pending(psn)),
            "kyc": self.state.kyc.get(psn, "unverified"),
            "session": {
                "session_id": rg.session_id, "started_ts": rg.session_start,
                "elapsed_ms": (now - rg.session_start) if rg.session_start else 0,
                "net_position": rg.session_net, "staked": rg.session_staked,
                "reality_check_min": rg.reality_check_min,
            },
        }

    def limits_view(self, psn: str) -> dict[str, Any]:
        rg = self.state.player(psn)
        now = self.clock()
        return {
            "limits": {f"{k}_{p}": rg.limit(k, p).view(now) if (k, p) in rg.limits else {"amount": None}
                       for k in RG.LIMIT_KINDS for p in RG.WINDOWS},
            "excluded_until": rg.excluded_until or None, "break_until": rg.break_until or None,
            "reality_check_min": rg.reality_check_min,
        }

    def table_view(self, table_id: str) -> dict[str, Any]:
        t = self._table(table_id)
        r = t.round
        return {
            "table_id": table_id, "game": t.spec.game, "rules": t.rules.describe(), "live": t.accepting,
            "enabled": t.enabled, "feed_live": t.feed_live, "betting_window_s": t.spec.betting_window_s,
            "chain": ({"chain_id": t.chain.chain_id, "length": t.chain.length, "commitment": t.chain.commitment,
                       "used": t.chain.used} if t.chain else None),
            "round": ({"chain_id": r.chain_id, "n": r.n, "status": r.status, "closes_ts": r.closes_ts,
                       "bets": len(r.bets)} if r else None),
            "last_result": t.last_result,
        }

    def round_proof(self, table_id: str, chain_id: str, n: int) -> dict[str, Any]:
        """Everything needed to re-check a round (CONTRACT section 3), straight from the journal."""
        self._table(table_id)
        chain_row = self.store.query("SELECT seq FROM chains WHERE table_id=? AND chain_id=?", (table_id, chain_id))
        span = self.store.query("SELECT first_seq, last_seq FROM rounds WHERE table_id=? AND chain_id=? AND n=?",
                                (table_id, chain_id, n))
        if not span:
            r = self.state.tables[table_id].round
            if r is not None and r.chain_id == chain_id and r.n == n:
                span = [(r.opened_seq, self.store.durable_seq)]
        if not chain_row or not span:
            raise E.DomainError(E.NOT_FOUND, "no such round", 404)
        chain = self.store.read(chain_row[0][0], chain_row[0][0])[0]
        mine = [e for e in self.store.read(span[0][0], span[0][1])
                if e["data"].get("table_id") == table_id and e["data"].get("chain_id") == chain_id
                and e["data"].get("n") == n]
        end = next((e for e in mine if e["kind"] in (J.ROUND_SETTLED, J.ROUND_VOIDED)), None)
        bets = [e for e in mine if e["kind"] == J.BET_PLACED]
        proof: dict[str, Any] = {
            "table_id": table_id, "chain_id": chain_id, "n": n,
            "commitment": chain["data"]["commitment"], "chain_length": chain["data"]["length"],
            "status": "open" if end is None else ("settled" if end["kind"] == J.ROUND_SETTLED else "voided"),
            "bets": [{"bet_id": b["data"]["bet_id"], "player_seed": b["data"]["player_seed"],
                      "spot": b["data"]["spot"], "amount": b["data"]["amount"]} for b in bets],
            "entries": [chain] + mine,
        }
        if end is not None and end["kind"] == J.ROUND_SETTLED:
            d = end["data"]
            proof.update(game=d["game"], server_seed=d["server_seed"], client_seed=d["client_seed"],
                         outcome=d["outcome"], payouts=d["payouts"])
        elif end is not None:
            proof.update(reason=end["data"]["reason"], refunds=end["data"]["refunds"])
        return proof
