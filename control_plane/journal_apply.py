"""Apply one synced journal entry exactly once, with its audit checks and business effects,
in one database transaction keyed by (edge_id, seq).

JetStream dedup only covers its duplicate window; the primary key on `entries` covers the rest:
a redelivered entry with the same hash is a no-op, one with another hash is a fork.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, select, update

from contract import journal as J
from contract import sync as S
from control_plane import outbox
from control_plane.db.models import audit_flags, deposits, edge_sync, edges, entries, kyc, withdrawals
from control_plane.domain import kyc as kyc_rules
from control_plane.metrics import Metrics
from control_plane.util import insert_ignore, now_ms

Outcome = Literal["applied", "duplicate", "fork", "tampered"]


@dataclass
class ApplyResult:
    outcome: Outcome
    commands: int = 0  # commands queued (the publisher is woken when > 0)
    work: bool = False  # something for the processor (deposit, withdrawal, KYC)


def raise_flag(conn: Connection, metrics: Metrics | None, edge_id: str, kind: str, seq: int | None,
               detail: str) -> None:
    if insert_ignore(conn, audit_flags, {"edge_id": edge_id, "kind": kind, "seq": seq, "detail": detail,
                                         "ts": now_ms()}) and metrics is not None:
        metrics.audit_flags.labels(edge_id, kind).inc()


class JournalApplier:
    def __init__(self, engine: Engine, metrics: Metrics) -> None:
        self.engine, self.metrics = engine, metrics

    def apply(self, edge_id: str, e: S.SyncedEntry) -> ApplyResult:
        return self.apply_batch([(edge_id, e)])[0]

    def apply_batch(self, batch: list[tuple[str, S.SyncedEntry]]) -> list[ApplyResult]:
        """Apply a fetched batch in one transaction (one fsync), each entry still keyed by (edge, seq)."""
        with self.engine.begin() as c:
            results = [self._apply(c, edge_id, e) for edge_id, e in batch]
        for (edge_id, _), result in zip(batch, results):  # counted only once committed
            if result.outcome == "applied":
                self.metrics.entries_applied.labels(edge_id).inc()
            elif result.outcome == "duplicate":
                self.metrics.entries_duplicate.labels(edge_id).inc()
        return results

    def _apply(self, c: Connection, edge_id: str, e: S.SyncedEntry) -> ApplyResult:
        if not e.redacted and J.entry_hash(e.seq, e.ts, e.kind, e.data, e.prev) != e.hash:
            # Not stored: the genuine entry may still arrive and must not look like a fork.
            raise_flag(c, self.metrics, edge_id, "hash_mismatch", e.seq, "hash does not match the entry's content")
            return ApplyResult("tampered")
        held = c.execute(select(entries.c.hash).where(entries.c.edge_id == edge_id,
                                                      entries.c.seq == e.seq)).scalar()
        if held is not None:
            if held == e.hash:
                return ApplyResult("duplicate")
            raise_flag(c, self.metrics, edge_id, "fork", e.seq,
                       f"seq {e.seq} received with hash {e.hash} but {held} is held")
            return ApplyResult("fork")
        sync = c.execute(select(edge_sync).where(edge_sync.c.edge_id == edge_id)).mappings().first()
        if sync is None:
            c.execute(edge_sync.insert().values(edge_id=edge_id, head_seq=0, head_hash=J.GENESIS_PREV,
                                                max_seq=0, applied=0))
            head, head_hash, max_seq, applied = 0, J.GENESIS_PREV, 0, 0
        else:
            head, head_hash, max_seq, applied = sync["head_seq"], sync["head_hash"], sync["max_seq"], sync["applied"]
        c.execute(entries.insert().values(
            edge_id=edge_id, seq=e.seq, ts=e.ts, kind=e.kind, prev=e.prev, hash=e.hash,
            body=e.model_dump_json(), received_ts=now_ms()))
        if e.seq > max_seq + 1:
            raise_flag(c, self.metrics, edge_id, "gap", max_seq + 1,
                       f"seq {max_seq + 1}..{e.seq - 1} missing when seq {e.seq} arrived")
        elif e.seq < max_seq:
            raise_flag(c, self.metrics, edge_id, "reorder", e.seq, f"seq {e.seq} arrived after seq {max_seq}")
        max_seq = max(max_seq, e.seq)
        while True:  # advance the contiguous head, checking linkage as entries line up
            row = c.execute(select(entries.c.prev, entries.c.hash).where(
                entries.c.edge_id == edge_id, entries.c.seq == head + 1)).first()
            if row is None:
                break
            if row.prev != head_hash:
                raise_flag(c, self.metrics, edge_id, "chain_break", head + 1,
                           "prev does not match the hash of the previous entry")
            head, head_hash = head + 1, row.hash
        c.execute(update(edge_sync).where(edge_sync.c.edge_id == edge_id).values(
            head_seq=head, head_hash=head_hash, max_seq=max_seq, applied=applied + 1))
        result = ApplyResult("applied")
        self._effects(c, edge_id, e, result)
        return result

    # --- business effects, by kind ------------------------------------------------------------

    def _effects(self, c: Connection, edge_id: str, e: S.SyncedEntry, r: ApplyResult) -> None:
        d: dict[str, Any] = e.data
        try:
            if e.kind == S.DEPOSIT_REQUESTED:
                r.work = insert_ignore(c, deposits, {
                    "deposit_id": d["deposit_id"], "edge_id": edge_id, "jurisdiction": _jur(c, edge_id),
                    "player": d["player"], "amount": int(d["amount"]), "currency": d["currency"],
                    "method": str(d.get("method", "")), "status": "requested", "created_ts": e.ts,
                    "updated_ts": now_ms()})
            elif e.kind == S.DEPOSIT_CREDITED:
                c.execute(update(deposits).where(deposits.c.deposit_id == d["deposit_id"],
                                                 deposits.c.status.in_(("requested", "confirmed")))
                          .values(status="credited", updated_ts=now_ms()))
            elif e.kind == S.DEPOSIT_REFUSED:
                n = c.execute(update(deposits).where(deposits.c.deposit_id == d["deposit_id"],
                                                     deposits.c.status.in_(("requested", "confirmed")))
                              .values(status="refused", reason=str(d.get("reason", "")), updated_ts=now_ms()))
                r.work = n.rowcount > 0
            elif e.kind == S.WITHDRAWAL_REQUESTED:
                r.work = insert_ignore(c, withdrawals, {
                    "withdrawal_id": d["withdrawal_id"], "edge_id": edge_id, "jurisdiction": _jur(c, edge_id),
                    "player": d["player"], "amount": int(d["amount"]), "currency": d["currency"],
                    "rail": str(d.get("rail", "bank")), "status": "requested", "created_ts": e.ts,
                    "updated_ts": now_ms()})
            elif e.kind == S.WITHDRAWAL_PAID:
                c.execute(update(withdrawals).where(withdrawals.c.withdrawal_id == d["withdrawal_id"])
                          .values(status="settled", updated_ts=now_ms()))
            elif e.kind == S.WITHDRAWAL_RELEASED:
                c.execute(update(withdrawals).where(withdrawals.c.withdrawal_id == d["withdrawal_id"],
                                                    withdrawals.c.status != "paid")
                          .values(status="released", updated_ts=now_ms()))
            elif e.kind == S.PLAYER_EXCLUDED:
                r.commands += self._exclude_everywhere(c, edge_id, e)
            elif e.kind == S.KYC_REQUESTED:
                r.work, r.commands = self._kyc_requested(c, edge_id, d)
        except (KeyError, TypeError, ValueError) as exc:
            raise_flag(c, self.metrics, edge_id, "malformed", e.seq, f"{e.kind}: {exc!r}")

    def _exclude_everywhere(self, c: Connection, origin: str, e: S.SyncedEntry) -> int:
        d = e.data
        n = 0
        for (target,) in c.execute(select(edges.c.id).where(edges.c.id != origin)):
            cmd = S.PlayerExclude(id=outbox.exclude_id(origin, e.seq, target), ts=now_ms(), player=d["player"],
                                  until_ts=int(d["until_ts"]), origin_edge=origin,
                                  reason=str(d.get("kind", "self_exclusion")))
            n += outbox.enqueue(c, target, cmd)
        return n

    def _kyc_requested(self, c: Connection, edge_id: str, d: dict[str, Any]) -> tuple[bool, int]:
        jur, player, ref = _jur(c, edge_id), d["player"], str(d.get("reference", ""))
        row = c.execute(select(kyc).where(kyc.c.jurisdiction == jur, kyc.c.player == player)).mappings().first()
        current = row["status"] if row else "unverified"
        try:
            kyc_rules.transition(current, "pending")
        except kyc_rules.IllegalTransition:
            return False, 0  # already pending or decided: the request is a repeat
        version = (row["version"] if row else 0) + 1
        values = {"status": "pending", "reference": ref, "vendor_ref": "", "edge_id": edge_id,
                  "version": version, "submitted": False, "updated_ts": now_ms()}
        if row is None:
            c.execute(kyc.insert().values(jurisdiction=jur, player=player, **values))
        else:
            c.execute(update(kyc).where(kyc.c.jurisdiction == jur, kyc.c.player == player).values(**values))
        cmd = S.KycResult(id=outbox.kyc_result_id(jur, player, version), ts=now_ms(), player=player,
                          status="pending", reference=ref)
        return True, int(outbox.enqueue(c, edge_id, cmd))


def _jur(c: Connection, edge_id: str) -> str:
    return c.execute(select(edges.c.jurisdiction).where(edges.c.id == edge_id)).scalar() or ""


def entry_body(row_body: str) -> dict[str, Any]:
    return json.loads(row_body)
