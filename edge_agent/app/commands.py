"""Commands from the control plane (KYC results, deposit credits and declines, payout results,
remote exclusions, operators' table actions), each applied once by id; the journal records that it
was applied."""
from __future__ import annotations

from typing import Any

from contract import sync as S
from edge_agent.app.cashier import Cashier
from edge_agent.app.engine import Engine
from edge_agent.app.players import Players
from edge_agent.app.rounds import RoundScheduler
from edge_agent.domain import state as ST


class CloudCommands:
    def __init__(self, engine: Engine, cashier: Cashier, players: Players, rounds: RoundScheduler) -> None:
        self._engine = engine
        self._cashier = cashier
        self._players = players
        self._rounds = rounds

    async def apply(self, cmd: S.Command) -> list[dict[str, Any]]:
        """Apply a command once; returns its entries once durable ([] when already applied)."""
        eng = self._engine
        if cmd.id in eng.state.applied_commands:
            return []
        out: list[dict[str, Any]] = []
        if isinstance(cmd, S.KycResult):
            out.append(eng.record(S.KYC_UPDATED, {"player": cmd.player, "status": cmd.status,
                                                  "reference": cmd.reference}))
        elif isinstance(cmd, S.DepositCredit):
            if eng.state.deposits.get(cmd.deposit_id) not in ("credited", "refused", "declined"):
                out.append(self._cashier.credit_deposit(cmd.player, cmd.deposit_id, cmd.amount))
        elif isinstance(cmd, S.DepositDeclined):
            if eng.state.deposits.get(cmd.deposit_id) == "requested":
                out.append(eng.record(S.DEPOSIT_DECLINED, {
                    "deposit_id": cmd.deposit_id, "player": cmd.player, "amount": cmd.amount,
                    "currency": eng.config.currency, "reason": cmd.reason}))
                eng.publish_player(cmd.player, {"type": "deposit.declined", "deposit_id": cmd.deposit_id,
                                                "reason": cmd.reason})
        elif isinstance(cmd, S.PayoutResult):
            w = eng.state.withdrawals.get(cmd.withdrawal_id)
            if w is not None and w.status == "requested":
                base = {"withdrawal_id": w.withdrawal_id, "player": w.player, "amount": w.amount,
                        "currency": eng.config.currency}
                if cmd.status == "paid":
                    out.append(eng.record(S.WITHDRAWAL_PAID, {**base, "rail_ref": cmd.rail_ref}))
                else:
                    out.append(eng.record(S.WITHDRAWAL_RELEASED, {**base, "reason": cmd.reason}))
                eng.publish_player(w.player, {"type": "withdrawal", "withdrawal_id": w.withdrawal_id,
                                              "status": "paid" if cmd.status == "paid" else "refused",
                                              "reason": cmd.reason, "balance": eng.state.cash(w.player)})
        elif isinstance(cmd, S.TableControl):
            out += self._table_control(cmd)
        elif isinstance(cmd, S.PlayerExclude):
            rg = eng.state.player(cmd.player)
            if rg.excluded_until < cmd.until_ts:
                out.append(self._players.exclude(cmd.player, "self_exclusion", "remote", origin=cmd.origin_edge,
                                                 until_ts=cmd.until_ts))
        out.append(eng.record(S.COMMAND_APPLIED, {"command_id": cmd.id, "type": cmd.type}))
        await eng.durable(out[-1])
        if isinstance(cmd, S.TableControl) and cmd.table_id in eng.state.tables:
            self._rounds.wake(cmd.table_id)
        return out

    def _table_control(self, cmd: S.TableControl) -> list[dict[str, Any]]:
        """What the edge's own operator API does for the same action (not yet durable). An unknown
        table, or a void for a round that is no longer in progress, only records the command."""
        t = self._engine.state.tables.get(cmd.table_id)
        if t is None:
            return []
        if cmd.action == "void":
            r = t.round
            if r is None or (cmd.round_n is not None and (r.n, r.chain_id) != (cmd.round_n, cmd.chain_id)):
                return []
            e = self._rounds.void(t, cmd.reason)
            return [e] if e else []
        enabled = cmd.action == "enable"
        out = [self._engine.record(ST.TABLE_STATUS, {"table_id": cmd.table_id, "enabled": enabled,
                                                     "reason": cmd.reason, "by": cmd.by})]
        if not enabled:
            e = self._rounds.void(t, "table_disabled")
            out += [e] if e else []
        return out
