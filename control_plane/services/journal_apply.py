"""Apply one synced journal entry exactly once, with its audit checks and business effects,
in one database transaction keyed by (edge_id, seq).

JetStream dedup only covers its duplicate window; the primary key on `entries` covers the rest:
a redelivered entry with the same hash is a no-op, one with another hash is a fork.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine, bindparam, select, update

from contract import journal as J
from contract import sync as S
from control_plane.adapters import outbox
from control_plane.adapters.db.models import deposits, edge_sync, edges, entries, kyc, withdrawals
from control_plane.adapters.db.sql import insert_ignore
from control_plane.clock import now_ms
from control_plane.domain import deposit as dep
from control_plane.domain import kyc as kyc_rules
from control_plane.domain import withdrawal as wd
from control_plane.metrics import Metrics
from control_plane.services import tables
from control_plane.services.audit import raise_flag

Outcome = Literal["applied", "duplicate", "fork", "tampered"]


@dataclass
class ApplyResult:
    outcome: Outcome
    commands: int = 0  # commands queued (the publisher is woken when > 0)
    work: bool = False  # something for the processor (deposit, withdrawal, KYC)


_SELECT_LINK = select(entries.c.prev, entries.c.hash).where(
    entries.c.edge_id == bindparam("edge_id"), entries.c.seq == bindparam("seq"))


@dataclass
class _EdgeSync:
    """One edge's `edge_sync` row while a batch is applied (written back once, at its end)."""
    edge_id: str
    head: int
    head_hash: str
    max_seq: int
    applied: int
    exists: bool
    held_beyond_head: bool  # entries above the head were held before this batch (an open gap)
    applied_at_load: int = field(init=False)

    def __post_init__(self) -> None:
        self.applied_at_load = self.applied

    @classmethod
    def load(cls, c: Connection, edge_id: str) -> _EdgeSync:
        row = c.execute(select(edge_sync).where(edge_sync.c.edge_id == edge_id)).mappings().first()
        if row is None:
            return cls(edge_id, 0, J.GENESIS_PREV, 0, 0, False, False)
        return cls(edge_id, row["head_seq"], row["head_hash"], row["max_seq"], row["applied"], True,
                   row["max_seq"] > row["head_seq"])

    def save(self, c: Connection) -> None:
        values = {"head_seq": self.head, "head_hash": self.head_hash, "max_seq": self.max_seq, "applied": self.applied}
        if self.exists:
            c.execute(update(edge_sync).where(edge_sync.c.edge_id == self.edge_id).values(**values))
        else:
            c.execute(edge_sync.insert().values(edge_id=self.edge_id, **values))
            self.exists = True


class JournalApplier:
    def __init__(self, engine: Engine, metrics: Metrics) -> None:
        self.engine, self.metrics = engine, metrics

    def flag_malformed(self, malformed: list[tuple[str, str]]) -> None:
        """Deliveries that are not a SyncedEntry: one flag per (edge, reason)."""
        with self.engine.begin() as c:
            for edge, why in malformed:
                raise_flag(c, self.metrics, edge, "malformed", None, why)

    def apply(self, edge_id: str, e: S.SyncedEntry) -> ApplyResult:
        return self.apply_batch([(edge_id, e)])[0]

    def apply_batch(self, batch: list[tuple[str, S.SyncedEntry]], bodies: list[str] | None = None) -> list[ApplyResult]:
        """Apply a fetched batch in one transaction (one fsync), each entry still keyed by (edge, seq).
        `bodies`, when given, are the entries' JSON as received (already validated into `batch`):
        stored as they came instead of serialising each entry again.

        Entries are judged one by one in batch order, exactly as if applied singly (duplicate,
        fork, gap, reorder and chain-break checks, flags and business effects in that order), but
        the database work is batched: one read of the hashes already held for the batch's seqs and
        of each edge's sync row, the new entries in one multi-row INSERT, one sync-row write per
        edge. The contiguous head advances over the batch's own entries in memory; only when the
        edge already had entries held beyond its head (an open gap) is the database asked for them."""
        with self.engine.begin() as c:
            results = self._apply_many(c, batch, bodies)
        applied: dict[str, int] = {}
        duplicate: dict[str, int] = {}
        for (edge_id, _), result in zip(batch, results):  # counted only once committed
            if result.outcome == "applied":
                applied[edge_id] = applied.get(edge_id, 0) + 1
            elif result.outcome == "duplicate":
                duplicate[edge_id] = duplicate.get(edge_id, 0) + 1
        for edge_id, n in applied.items():
            self.metrics.entries_applied.labels(edge_id).inc(n)
        for edge_id, n in duplicate.items():
            self.metrics.entries_duplicate.labels(edge_id).inc(n)
        return results

    def _apply_many(self, c: Connection, batch: list[tuple[str, S.SyncedEntry]],
                    bodies: list[str] | None) -> list[ApplyResult]:
        states = {edge_id: _EdgeSync.load(c, edge_id) for edge_id in dict.fromkeys(edge for edge, _ in batch)}
        held = self._held_hashes(c, batch, states)  # (edge, seq) -> hash, from the database, then this batch
        rows: list[dict[str, Any]] = []
        received = now_ms()
        results: list[ApplyResult] = []
        for i, (edge_id, e) in enumerate(batch):
            if not e.redacted and not _hash_ok(e):
                # Not stored: the genuine entry may still arrive and must not look like a fork.
                raise_flag(c, self.metrics, edge_id, "hash_mismatch", e.seq,
                           "hash does not match the entry's content")
                results.append(ApplyResult("tampered"))
                continue
            have = held.get((edge_id, e.seq))
            if have is not None:
                if have[1] == e.hash:
                    results.append(ApplyResult("duplicate"))
                else:
                    raise_flag(c, self.metrics, edge_id, "fork", e.seq,
                               f"seq {e.seq} received with hash {e.hash} but {have[1]} is held")
                    results.append(ApplyResult("fork"))
                continue
            st = states[edge_id]
            rows.append({"edge_id": edge_id, "seq": e.seq, "ts": e.ts, "kind": e.kind, "prev": e.prev,
                         "hash": e.hash, "body": bodies[i] if bodies is not None else e.model_dump_json(),
                         "received_ts": received})
            held[(edge_id, e.seq)] = (e.prev, e.hash)
            if e.seq > st.max_seq + 1:
                raise_flag(c, self.metrics, edge_id, "gap", st.max_seq + 1,
                           f"seq {st.max_seq + 1}..{e.seq - 1} missing when seq {e.seq} arrived")
            elif e.seq < st.max_seq:
                raise_flag(c, self.metrics, edge_id, "reorder", e.seq, f"seq {e.seq} arrived after seq {st.max_seq}")
            st.max_seq = max(st.max_seq, e.seq)
            while True:  # advance the contiguous head, checking linkage as entries line up
                nxt = held.get((edge_id, st.head + 1))
                if nxt is None and st.held_beyond_head:
                    row = c.execute(_SELECT_LINK, {"edge_id": edge_id, "seq": st.head + 1}).first()
                    nxt = (row.prev, row.hash) if row is not None else None
                if nxt is None:
                    break
                if nxt[0] != st.head_hash:
                    raise_flag(c, self.metrics, edge_id, "chain_break", st.head + 1,
                               "prev does not match the hash of the previous entry")
                st.head, st.head_hash = st.head + 1, nxt[1]
            st.applied += 1
            result = ApplyResult("applied")
            self._effects(c, edge_id, e, result)
            results.append(result)
        if rows:
            _insert_entries(c, rows)
        for st in states.values():
            if st.applied != st.applied_at_load:
                st.save(c)
        return results

    @staticmethod
    def _held_hashes(c: Connection, batch: list[tuple[str, S.SyncedEntry]],
                     states: dict[str, _EdgeSync]) -> dict[tuple[str, int], tuple[str, str]]:
        """What the database holds for the batch's seqs. Only seqs up to the edge's highest held
        seq can be there: a backlog arriving in order (the usual case) costs no read at all."""
        by_edge: dict[str, list[int]] = {}
        for edge_id, e in batch:
            if e.seq <= states[edge_id].max_seq:
                by_edge.setdefault(edge_id, []).append(e.seq)
        held: dict[tuple[str, int], tuple[str, str]] = {}
        for edge_id, seqs in by_edge.items():
            seqs = sorted(set(seqs))
            for i in range(0, len(seqs), 500):
                chunk = seqs[i:i + 500]
                for seq, prev, h in c.execute(select(entries.c.seq, entries.c.prev, entries.c.hash).where(
                        entries.c.edge_id == edge_id, entries.c.seq.in_(chunk))):
                    held[(edge_id, seq)] = (prev, h)
        return held

    # --- business effects, by kind ------------------------------------------------------------

    def _effects(self, c: Connection, edge_id: str, e: S.SyncedEntry, r: ApplyResult) -> None:
        d: dict[str, Any] = e.data
        try:
            if e.kind == S.DEPOSIT_REQUESTED:
                r.work = insert_ignore(c, deposits, {
                    "deposit_id": d["deposit_id"], "edge_id": edge_id, "jurisdiction": _jur(c, edge_id),
                    "player": d["player"], "amount": int(d["amount"]), "currency": d["currency"],
                    "method": str(d.get("method", "")), "status": dep.NEW, "created_ts": e.ts,
                    "updated_ts": now_ms()})
            elif e.kind == S.DEPOSIT_CREDITED:
                c.execute(update(deposits).where(deposits.c.deposit_id == d["deposit_id"],
                                                 deposits.c.status.in_(dep.OPEN_AT_EDGE))
                          .values(status="credited", updated_ts=now_ms()))
            elif e.kind == S.DEPOSIT_REFUSED:
                n = c.execute(update(deposits).where(deposits.c.deposit_id == d["deposit_id"],
                                                     deposits.c.status.in_(dep.OPEN_AT_EDGE))
                              .values(status="refused", reason=str(d.get("reason", "")), updated_ts=now_ms()))
                r.work = n.rowcount > 0
            elif e.kind == S.WITHDRAWAL_REQUESTED:
                r.work = insert_ignore(c, withdrawals, {
                    "withdrawal_id": d["withdrawal_id"], "edge_id": edge_id, "jurisdiction": _jur(c, edge_id),
                    "player": d["player"], "amount": int(d["amount"]), "currency": d["currency"],
                    "rail": str(d.get("rail", "bank")), "status": wd.NEW, "created_ts": e.ts,
                    "updated_ts": now_ms()})
            elif e.kind == S.WITHDRAWAL_PAID:
                c.execute(update(withdrawals).where(withdrawals.c.withdrawal_id == d["withdrawal_id"])
                          .values(status="settled", updated_ts=now_ms()))
            elif e.kind == S.WITHDRAWAL_RELEASED:
                c.execute(update(withdrawals).where(withdrawals.c.withdrawal_id == d["withdrawal_id"],
                                                    withdrawals.c.status.notin_(wd.RELEASE_BLOCKED))
                          .values(status="released", updated_ts=now_ms()))
            elif e.kind == S.PLAYER_EXCLUDED:
                r.commands += self._exclude_everywhere(c, edge_id, e)
            elif e.kind == S.KYC_REQUESTED:
                r.work, r.commands = self._kyc_requested(c, edge_id, d)
            elif e.kind in tables.KINDS:
                tables.project(c, edge_id, e.seq, e.kind, d)
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


_ENTRY_COLUMNS = tuple(col.name for col in entries.columns)
_entry_values = operator.itemgetter(*_ENTRY_COLUMNS)  # row dict -> values tuple, in C
_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _insert_entries(c: Connection, rows: list[dict[str, Any]]) -> None:
    """The batch's new entries in one executemany, through the driver directly: SQLAlchemy's
    per-row parameter processing was a tenth of the apply cost at backlog speed (SQLite's `?`,
    psycopg's `%s`)."""
    mark = _PLACEHOLDER.get(c.dialect.paramstyle)
    if mark is None:  # a driver with another style: let SQLAlchemy translate
        c.execute(entries.insert(), rows)
        return
    sql = f"INSERT INTO entries ({', '.join(_ENTRY_COLUMNS)}) VALUES ({', '.join([mark] * len(_ENTRY_COLUMNS))})"
    c.exec_driver_sql(sql, list(map(_entry_values, rows)))


def _hash_ok(e: S.SyncedEntry) -> bool:
    return J.hash_matches(e.seq, e.ts, e.kind, e.data, e.prev, e.hash)


def _jur(c: Connection, edge_id: str) -> str:
    return c.execute(select(edges.c.jurisdiction).where(edges.c.id == edge_id)).scalar() or ""
