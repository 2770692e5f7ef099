"""The cloud's own decisions, driven from database state (so a restart simply resumes):
KYC submissions, deposit confirmation and refunds, withdrawal decisions (KYC + AML) and payouts.

Payout protocol (no double payout, ever): mark `paying` and commit; ask the rail, which is
idempotent by withdrawal id; then record `paid` and queue the PayoutResult in one transaction.
A crash anywhere in between leaves `paying`, and the next run asks the rail again and gets the
same payout back.

Several replicas run this processor at once. Every step that talks to a third party (rail, PSP,
KYC vendor) runs under that item's lease (adapters/db/leases.py: skipped while another replica
holds it, freed when its holder dies) and re-reads the item under it; the status moves stay
conditional. Each pass runs in a worker thread: its SQL and the PSP / rail calls (blocking, and
as slow as the third party) never hold the event loop that serves the API.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, select, update

from contract import sync as S
from control_plane.adapters import outbox
from control_plane.adapters.db import leases as L
from control_plane.adapters.db.models import aml_flags, deposits, edges, kyc, withdrawals
from control_plane.adapters.db.sql import insert_ignore
from control_plane.clock import now_ms
from control_plane.config import ControlPlaneConfig
from control_plane.domain import aml
from control_plane.domain import deposit as dep
from control_plane.domain import withdrawal as wd
from control_plane.metrics import Metrics
from control_plane.ports.kyc_vendor import KycVendor
from control_plane.ports.payout_rail import Payout, PayoutRail
from control_plane.ports.psp import PaymentProvider
from control_plane.services.deposits import move as deposit_move
from control_plane.services.withdrawals import move, queue_refusal

log = structlog.get_logger("control_plane.processor")


def no_fault(point: str, key: str) -> None:
    """Fault-injection hook (tests replace it to crash at a named point)."""


class Processor:
    def __init__(self, engine: Engine, config: ControlPlaneConfig, metrics: Metrics,
                 rails: Mapping[str, PayoutRail], psp: PaymentProvider, vendor: KycVendor | None,
                 wake_publisher: Callable[[], None], leases: L.Leases | None = None) -> None:
        self.engine, self.config, self.metrics = engine, config, metrics
        self.leases = leases or L.Leases(engine, config.replica)
        self.rails, self.psp, self.vendor = rails, psp, vendor
        self.wake_publisher = wake_publisher
        self.fault: Callable[[str, str], None] = no_fault

    async def run_once(self) -> int:
        """One pass over everything pending; returns how many items moved. The blocking work runs
        in a worker thread (the KYC vendor's client is async and stays on the loop)."""
        await asyncio.to_thread(self._backfill_jurisdictions)
        n = await self._kyc_submissions()
        n += await asyncio.to_thread(self._money)
        if n:
            self.wake_publisher()
        return n

    def _money(self) -> int:
        return self._deposits() + self._withdrawal_decisions() + self._payouts()

    def _reread(self, table: Any, key: Any, value: str) -> Mapping[str, Any] | None:
        with self.engine.connect() as c:
            return c.execute(select(table).where(key == value)).mappings().first()

    def _backfill_jurisdictions(self) -> None:
        """Entries applied before their edge was registered carry jurisdiction "": fill it in once the
        registry knows the edge. Until then such rows wait (residency decides whose rules apply)."""
        with self.engine.begin() as c:
            known = dict(c.execute(select(edges.c.id, edges.c.jurisdiction)).all())
            for table in (deposits, withdrawals):
                for (edge_id,) in c.execute(select(table.c.edge_id).where(table.c.jurisdiction == "").distinct()).all():
                    if known.get(edge_id):
                        c.execute(update(table).where(table.c.edge_id == edge_id, table.c.jurisdiction == "")
                                  .values(jurisdiction=known[edge_id]))
            for r in c.execute(select(kyc.c.player, kyc.c.edge_id).where(kyc.c.jurisdiction == "")).all():
                jur = known.get(r.edge_id)
                taken = jur and c.execute(select(kyc.c.player).where(kyc.c.jurisdiction == jur,
                                                                     kyc.c.player == r.player)).first()
                if jur and not taken:
                    c.execute(update(kyc).where(kyc.c.jurisdiction == "", kyc.c.player == r.player)
                              .values(jurisdiction=jur))

    # --- KYC ------------------------------------------------------------------------------------

    async def _kyc_submissions(self) -> int:
        if self.vendor is None:
            return 0
        def _todo() -> list[Any]:
            with self.engine.connect() as c:
                return list(c.execute(select(kyc).where(kyc.c.status == "pending", kyc.c.submitted.is_(False),
                                                        kyc.c.jurisdiction != "")).mappings().all())

        def _submitted(r: Mapping[str, Any], vendor_ref: str) -> None:
            with self.engine.begin() as c:
                c.execute(update(kyc).where(kyc.c.jurisdiction == r["jurisdiction"], kyc.c.player == r["player"],
                                            kyc.c.version == r["version"], kyc.c.submitted.is_(False))
                          .values(submitted=True, vendor_ref=vendor_ref, updated_ts=now_ms()))

        def _still_todo(r: Mapping[str, Any]) -> bool:
            with self.engine.connect() as c:
                return c.execute(select(kyc.c.player).where(
                    kyc.c.jurisdiction == r["jurisdiction"], kyc.c.player == r["player"],
                    kyc.c.version == r["version"], kyc.c.submitted.is_(False))).first() is not None

        rows = await asyncio.to_thread(_todo)
        n = 0
        for r in rows:
            name = f"{r['jurisdiction']}:{r['player']}:{r['version']}"
            if not await asyncio.to_thread(self.leases.try_acquire, L.KYC, name):
                continue  # another replica is submitting it
            try:
                if not await asyncio.to_thread(_still_todo, r):
                    continue
                vendor_ref = await self.vendor.submit(r["jurisdiction"], r["player"], r["reference"])
                await asyncio.to_thread(_submitted, r, vendor_ref)
                n += 1
            finally:
                await asyncio.to_thread(self.leases.release, L.KYC, name)
        return n

    # --- deposits -------------------------------------------------------------------------------

    def _deposits(self) -> int:
        with self.engine.connect() as c:
            todo = c.execute(select(deposits).where(deposits.c.status.in_(dep.PSP_WORK))
                             .order_by(deposits.c.created_ts)).mappings().all()
        n = 0
        for row in todo:
            with self.leases.hold(L.DEPOSIT, row["deposit_id"]) as mine:
                d = self._reread(deposits, deposits.c.deposit_id, row["deposit_id"]) if mine else None
                if d is None or d["status"] not in dep.PSP_WORK:
                    continue  # another replica has it, or had it and finished
                n += 1
                if d["status"] == "requested":
                    self._confirm_deposit(d)
                else:
                    ref = self.psp.refund(d["deposit_id"])  # idempotent by deposit id
                    self.fault("after_refund", d["deposit_id"])
                    with self.engine.begin() as c:
                        deposit_move(c, d["deposit_id"], "refused", "refunded", psp_ref=ref)
        return n

    def _confirm_deposit(self, d: Mapping[str, Any]) -> None:
        charge = self.psp.confirm(d["deposit_id"], d["amount"], d["currency"], d["method"])
        self.fault("after_charge", d["deposit_id"])
        with self.engine.begin() as c:
            if charge.status != "confirmed":
                moved = deposit_move(c, d["deposit_id"], "requested", "failed", reason=charge.reason,
                                     psp_ref=charge.psp_ref)
                if moved:  # the player's edge closes the request (same transaction: told exactly once)
                    outbox.enqueue(c, d["edge_id"], S.DepositDeclined(
                        id=outbox.deposit_declined_id(d["deposit_id"]), ts=now_ms(), deposit_id=d["deposit_id"],
                        player=d["player"], amount=d["amount"], reason=charge.reason or "declined"))
                return
            moved = deposit_move(c, d["deposit_id"], "requested", "confirmed", psp_ref=charge.psp_ref)
            if not moved:
                return
            history = self._history(c, d["jurisdiction"], d["player"], exclude=d["deposit_id"])
            for f in aml.flags_for(self.config.aml, d["created_ts"], d["amount"], d["currency"], history, "deposit"):
                self._flag(c, d, f, d["deposit_id"])
            outbox.enqueue(c, d["edge_id"], S.DepositCredit(
                id=outbox.deposit_credit_id(d["deposit_id"]), ts=now_ms(), deposit_id=d["deposit_id"],
                player=d["player"], amount=d["amount"], currency=d["currency"]))

    # --- withdrawals: decision ------------------------------------------------------------------

    def _withdrawal_decisions(self) -> int:
        with self.engine.connect() as c:
            todo = c.execute(select(withdrawals).where(withdrawals.c.status == wd.NEW,
                                                       withdrawals.c.jurisdiction != "")
                             .order_by(withdrawals.c.created_ts, withdrawals.c.withdrawal_id)).mappings().all()
        for w in todo:
            with self.engine.begin() as c:
                status = c.execute(select(kyc.c.status).where(kyc.c.jurisdiction == w["jurisdiction"],
                                                              kyc.c.player == w["player"])).scalar() or "unverified"
                history = self._history(c, w["jurisdiction"], w["player"], exclude=w["withdrawal_id"])
                decision = aml.decide_withdrawal(self.config.aml, kyc_status=status, now_ms=w["created_ts"],
                                                 amount=w["amount"], currency=w["currency"], history=history)
                if decision.action == "approve" and w["rail"] not in self.rails:
                    decision = aml.Decision("refuse", "unknown_rail", decision.flags)
                for f in decision.flags:
                    self._flag(c, w, f, w["withdrawal_id"])
                new = wd.AFTER_DECISION[decision.action]
                moved = move(c, w["withdrawal_id"], wd.NEW, new, reason=decision.reason)
                if moved and new == "refused":
                    queue_refusal(c, w, decision.reason)
                    self.metrics.payouts.labels(w["rail"], "refused").inc()
        return len(todo)

    def _history(self, c: Connection, jur: str, player: str, exclude: str) -> list[aml.Operation]:
        ops = [aml.Operation(r.created_ts, r.amount, r.currency, "deposit") for r in c.execute(
            select(deposits.c.created_ts, deposits.c.amount, deposits.c.currency).where(
                deposits.c.jurisdiction == jur, deposits.c.player == player, deposits.c.deposit_id != exclude,
                deposits.c.status.in_(dep.AN_OPERATION)))]
        ops += [aml.Operation(r.created_ts, r.amount, r.currency, "withdrawal") for r in c.execute(
            select(withdrawals.c.created_ts, withdrawals.c.amount, withdrawals.c.currency).where(
                withdrawals.c.jurisdiction == jur, withdrawals.c.player == player,
                withdrawals.c.withdrawal_id != exclude,
                withdrawals.c.status.notin_(wd.NOT_AN_OPERATION)))]
        return ops

    def _flag(self, c: Connection, row: Mapping[str, Any], f: aml.Flag, ref_id: str) -> None:
        if insert_ignore(c, aml_flags, {"jurisdiction": row["jurisdiction"], "player": row["player"],
                                        "kind": f.kind, "ref_id": ref_id, "detail": f.detail, "ts": now_ms()}):
            self.metrics.aml_flags.labels(f.kind).inc()

    # --- withdrawals: payout --------------------------------------------------------------------

    def _payouts(self) -> int:
        with self.engine.connect() as c:
            todo = c.execute(select(withdrawals).where(withdrawals.c.status.in_(wd.PAYABLE))
                             .order_by(withdrawals.c.created_ts)).mappings().all()
        moved = 0
        for row in todo:
            with self.leases.hold(L.WITHDRAWAL, row["withdrawal_id"]) as mine:
                # under the lease: re-read (another replica may have paid it since the listing)
                w = self._reread(withdrawals, withdrawals.c.withdrawal_id, row["withdrawal_id"]) if mine else None
                if w is None or w["status"] not in wd.PAYABLE:
                    continue
                try:
                    moved += self._pay(w)
                except Exception as exc:  # noqa: BLE001 - one rail outage must not stall other payouts
                    self.metrics.errors.labels("payout").inc()
                    log.error("payout attempt failed; retried next pass", withdrawal=w["withdrawal_id"],
                              error=repr(exc))
        return moved

    def _pay(self, w: Mapping[str, Any]) -> int:
        """One payout step: claim (approved -> paying), ask the rail, record the result."""
        rail = self.rails[w["rail"]]
        if w["status"] == "approved":
            with self.engine.begin() as c:
                ok = move(c, w["withdrawal_id"], "approved", "paying")
            if not ok:
                return 0
            self.fault("before_rail", w["withdrawal_id"])
        payout = rail.payout(w["withdrawal_id"], w["player"], w["amount"], w["currency"])
        self.fault("after_rail", w["withdrawal_id"])
        if payout.status == "pending":
            return 0  # crypto: waiting for confirmations; asked again next pass
        return self._record_payout(w, payout)

    def _record_payout(self, w: Mapping[str, Any], p: Payout) -> int:
        with self.engine.begin() as c:
            status = wd.after_payout("paid" if p.status == "paid" else "failed")
            ok = move(c, w["withdrawal_id"], "paying", status, rail_ref=p.rail_ref,
                      reason="" if status == "paid" else "rail_failed")
            if not ok:
                return 0
            outbox.enqueue(c, w["edge_id"], S.PayoutResult(
                id=outbox.payout_result_id(w["withdrawal_id"]), ts=now_ms(), withdrawal_id=w["withdrawal_id"],
                player=w["player"], status="paid" if status == "paid" else "refused",
                reason="" if status == "paid" else "rail_failed", rail=p.rail, rail_ref=p.rail_ref))
        self.metrics.payouts.labels(p.rail, status).inc()
        return 1

