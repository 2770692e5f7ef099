"""The edge's state as a fold over its journal: `state.apply(entry)` for every entry, in order.

The same reducer runs live (right after an entry is appended) and at start-up (replay), so a
restarted edge holds exactly the balances, rounds and limits its journal says. Commands are
validated against this state by the casino before any entry is written.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contract import journal as J
from contract import sync as S
from contract.kinds import (  # the kinds are named once, in contract.kinds
    LIMITS_CHANGED,
    PLAYER_REGISTERED,
    PLAYER_SETTINGS,
    SESSION_ENDED,
    SESSION_STARTED,
    TABLE_FEED,
    TABLE_RULES,
    TABLE_STATUS,
)
from edge_agent.domain import games
from edge_agent.domain import ledger as L
from edge_agent.domain import responsible as RG
from edge_agent.domain.rounds import CLOSED, OPEN, Bet, Chain, Round
from edge_agent.domain.tables import Limits, RuleSet, TableSpec

# Edge kinds beyond CONTRACT section 2 and contract.sync.
ROUND_CLOSED = J.ROUND_CLOSED

__all__ = ["CLOSED", "OPEN", "Bet", "Chain", "EdgeState", "Round", "Table", "Withdrawal"]


@dataclass
class Table:
    spec: TableSpec
    rules: RuleSet
    chain: Chain | None = None
    round: Round | None = None
    enabled: bool = True
    feed_live: bool = True
    last_result: dict[str, Any] | None = None
    rules_journaled: bool = False

    @property
    def accepting(self) -> bool:
        return self.enabled and (self.feed_live or not self.spec.requires_feed)


@dataclass
class Withdrawal:
    withdrawal_id: str
    player: str
    amount: int
    status: str  # requested | paid | released
    rail: str = ""
    reason: str = ""


class EdgeState:
    def __init__(self, tables: list[TableSpec], rg_defaults: RG.Defaults | None = None) -> None:
        self.rg_defaults = rg_defaults or RG.Defaults()
        self.ledger = L.Ledger()
        self.tables: dict[str, Table] = {t.table_id: Table(spec=t, rules=t.rules) for t in tables}
        self.players: dict[str, RG.PlayerRG] = {}
        self.bets: dict[str, Bet] = {}  # bets in open rounds
        self.withdrawals: dict[str, Withdrawal] = {}
        self.deposits: dict[str, str] = {}  # deposit_id -> requested | credited | refused | declined
        self.kyc: dict[str, str] = {}
        self.applied_commands: set[str] = set()
        self.seq = 0
        self.head = J.GENESIS_PREV
        self._dispatch: dict[str, Callable[[dict[str, Any], int], None]] = {
            J.FAIRNESS_CHAIN: self._chain,
            J.ROUND_OPENED: self._opened,
            ROUND_CLOSED: self._closed,
            J.BET_PLACED: self._bet,
            J.ROUND_SETTLED: self._settled,
            J.ROUND_VOIDED: self._voided,
            PLAYER_REGISTERED: self._registered,
            PLAYER_SETTINGS: self._settings,
            SESSION_STARTED: self._session_started,
            SESSION_ENDED: self._session_ended,
            LIMITS_CHANGED: self._limits,
            S.PLAYER_EXCLUDED: self._excluded,
            S.DEPOSIT_REQUESTED: self._deposit_requested,
            S.DEPOSIT_CREDITED: self._deposit_credited,
            S.DEPOSIT_REFUSED: self._deposit_refused,
            S.DEPOSIT_DECLINED: self._deposit_declined,
            S.WITHDRAWAL_REQUESTED: self._withdrawal_requested,
            S.WITHDRAWAL_PAID: self._withdrawal_paid,
            S.WITHDRAWAL_RELEASED: self._withdrawal_released,
            S.KYC_UPDATED: self._kyc,
            S.COMMAND_APPLIED: self._command,
            TABLE_RULES: self._rules,
            TABLE_STATUS: self._status,
            TABLE_FEED: self._feed,
        }

    # --- queries ------------------------------------------------------------------------------

    def player(self, psn: str) -> RG.PlayerRG:
        p = self.players.get(psn)
        if p is None:
            p = self.players[psn] = self.rg_defaults.new_player()
        return p

    def cash(self, psn: str) -> int:
        return self.ledger.balance(L.cash(psn))

    def in_play(self, psn: str) -> int:
        return self.ledger.balance(L.in_play(psn))

    # --- the fold -----------------------------------------------------------------------------

    def apply(self, e: dict[str, Any]) -> None:
        if e["seq"] != self.seq + 1 or e["prev"] != self.head:
            raise ValueError(f"journal entry {e['seq']} does not follow {self.seq}")
        fn = self._dispatch.get(e["kind"])
        if fn is not None:
            fn(e["data"], e["ts"])
            if e["kind"] == J.ROUND_OPENED:
                r = self.tables[e["data"]["table_id"]].round
                assert r is not None
                r.opened_seq = e["seq"]
        elif (game := games.owner_of_kind(e["kind"])) is not None:
            self._play(game, e["kind"], e["data"])
        self.seq, self.head = e["seq"], e["hash"]

    def _chain(self, d: dict[str, Any], ts: int) -> None:
        t = self.tables.get(d["table_id"])
        if t is not None:
            t.chain = Chain(d["chain_id"], d["length"], d["commitment"])

    def _opened(self, d: dict[str, Any], ts: int) -> None:
        t = self.tables[d["table_id"]]
        assert t.chain is not None and t.chain.chain_id == d["chain_id"]
        t.chain.used = d["n"]
        t.round = Round(d["table_id"], d["chain_id"], d["n"], d["game"], d.get("rules_version", t.rules.version),
                        ts, d.get("closes_ts", ts))

    def _closed(self, d: dict[str, Any], ts: int) -> None:
        r = self.tables[d["table_id"]].round
        if r is not None and r.n == d["n"]:
            r.status = CLOSED

    def _bet(self, d: dict[str, Any], ts: int) -> None:
        t = self.tables[d["table_id"]]
        r = t.round
        assert r is not None and r.n == d["n"] and r.chain_id == d["chain_id"]
        psn, amount = d["player"], d["amount"]
        bet = Bet(d["bet_id"], psn, d["table_id"], r.key, d["spot"], amount, d["player_seed"])
        self.ledger.transfer(L.cash(psn), L.in_play(psn), amount)
        r.add(bet)
        self.bets[bet.bet_id] = bet

    def _play(self, game: games.Game, kind: str, d: dict[str, Any]) -> None:
        # A game's own entry of its play phase (CONTRACT section 3); it may add a stake to a bet.
        r = self.tables[d["table_id"]].round
        assert r is not None and r.n == d["n"] and r.chain_id == d["chain_id"]
        r.play.append((kind, d))
        extra = game.extra_stake(kind, d)
        if extra is not None:
            bet = self.bets[extra[0]]
            self.ledger.transfer(L.cash(bet.player), L.in_play(bet.player), extra[1])
            r.add_stake(bet, extra[1])

    def _settled(self, d: dict[str, Any], ts: int) -> None:
        t = self.tables[d["table_id"]]
        for p in d["payouts"]:
            bet = self.bets.pop(p["bet_id"])
            won, stake = p["payout"], bet.stake
            self.ledger.post([(L.in_play(bet.player), -stake), (L.cash(bet.player), won),
                              (L.HOUSE, stake - won)])
            rg = self.player(bet.player)
            rg.losses.add(ts, stake - won)
            if rg.session_start is not None:
                rg.session_net += won - stake
                rg.session_staked += stake
        t.last_result = {"n": d["n"], "outcome": d["outcome"], "chain_id": d["chain_id"]}
        t.round = None

    def _voided(self, d: dict[str, Any], ts: int) -> None:
        t = self.tables[d["table_id"]]
        for r in d["refunds"]:
            bet = self.bets.pop(r["bet_id"])
            self.ledger.transfer(L.in_play(bet.player), L.cash(bet.player), r["amount"])
        if t.round is not None and t.round.n == d["n"] and t.round.chain_id == d["chain_id"]:
            t.round = None

    def _registered(self, d: dict[str, Any], ts: int) -> None:
        self.player(d["player"])

    def _settings(self, d: dict[str, Any], ts: int) -> None:
        self.player(d["player"]).reality_check_min = d.get("reality_check_min")

    def _session_started(self, d: dict[str, Any], ts: int) -> None:
        rg = self.player(d["player"])
        rg.session_id, rg.session_start, rg.session_net, rg.session_staked = d["session_id"], ts, 0, 0

    def _session_ended(self, d: dict[str, Any], ts: int) -> None:
        rg = self.player(d["player"])
        if rg.session_id == d["session_id"]:
            rg.session_id, rg.session_start = None, None

    def _limits(self, d: dict[str, Any], ts: int) -> None:
        lim = self.player(d["player"]).limit(d["limit"], d["period"])
        RG.apply_limit_change(lim, d["amount"], d["effective_ts"], ts)

    def _excluded(self, d: dict[str, Any], ts: int) -> None:
        rg = self.player(d["player"])
        if d.get("kind", "self_exclusion") == "break":
            rg.break_until = max(rg.break_until, d["until_ts"])
        else:
            rg.excluded_until = max(rg.excluded_until, d["until_ts"])
        rg.session_id, rg.session_start = None, None

    def _deposit_requested(self, d: dict[str, Any], ts: int) -> None:
        self.deposits.setdefault(d["deposit_id"], "requested")

    def _deposit_credited(self, d: dict[str, Any], ts: int) -> None:
        self.ledger.transfer(L.WORLD, L.cash(d["player"]), d["amount"])
        self.player(d["player"]).deposits.add(ts, d["amount"])
        self.deposits[d["deposit_id"]] = "credited"

    def _deposit_refused(self, d: dict[str, Any], ts: int) -> None:
        self.deposits[d["deposit_id"]] = "refused"

    def _deposit_declined(self, d: dict[str, Any], ts: int) -> None:
        self.deposits[d["deposit_id"]] = "declined"

    def _withdrawal_requested(self, d: dict[str, Any], ts: int) -> None:
        psn, amount = d["player"], d["amount"]
        self.ledger.transfer(L.cash(psn), L.pending(psn), amount)
        self.withdrawals[d["withdrawal_id"]] = Withdrawal(d["withdrawal_id"], psn, amount, "requested",
                                                          d.get("rail", ""))

    def _withdrawal_paid(self, d: dict[str, Any], ts: int) -> None:
        w = self.withdrawals[d["withdrawal_id"]]
        self.ledger.transfer(L.pending(w.player), L.WORLD, w.amount)
        w.status = "paid"

    def _withdrawal_released(self, d: dict[str, Any], ts: int) -> None:
        w = self.withdrawals[d["withdrawal_id"]]
        self.ledger.transfer(L.pending(w.player), L.cash(w.player), w.amount)
        w.status, w.reason = "released", d.get("reason", "")

    def _kyc(self, d: dict[str, Any], ts: int) -> None:
        self.kyc[d["player"]] = d["status"]

    def _command(self, d: dict[str, Any], ts: int) -> None:
        self.applied_commands.add(d["command_id"])

    def _rules(self, d: dict[str, Any], ts: int) -> None:
        t = self.tables.get(d["table_id"])
        if t is None:
            # A table the journal knows but the configuration no longer runs (decommissioned):
            # kept so its history replays; it takes no bets.
            rules = RuleSet(d["version"], d["game"], Limits(**d["limits"]))
            t = self.tables[d["table_id"]] = Table(spec=TableSpec(d["table_id"], rules), rules=rules, enabled=False)
        if t is not None:
            t.rules = RuleSet(d["version"], d["game"], Limits(**d["limits"]))
            t.rules_journaled = True

    def _status(self, d: dict[str, Any], ts: int) -> None:
        t = self.tables.get(d["table_id"])
        if t is not None:
            t.enabled = d["enabled"]

    def _feed(self, d: dict[str, Any], ts: int) -> None:
        t = self.tables.get(d["table_id"])
        if t is not None:
            t.feed_live = d["live"]
