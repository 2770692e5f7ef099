"""Before an edge starts on a journal restored from a replica: catch up with what the cloud holds.

A Litestream replica lags the primary by up to its sync interval, so a restored journal can end
before entries the cloud already received. Appending from there would fork the chain (two
different entries for one seq). `reconcile_from_cloud` runs BEFORE `Casino(...)` opens the
journal (the casino folds its state from the journal at construction):

1. ask the cloud's high-water mark (H, hash) for this edge (control plane, else the stream);
2. local head L >= H: the entry at H must have the cloud's hash -> "in_sync"; else `JournalConflict`;
3. L < H: fetch the cloud's entries L..H; they must link onto the local head, be contiguous,
   carry their full data (no `redacted` fields) and hash correctly; then they are inserted into the
   journal with the round/chain index rows and `kv.sync.sent_seq = H`, in one transaction ->
   "imported". Otherwise `JournalConflict` (e.g. the residency policy kept data in-country: a
   newer in-country copy is needed, the cloud cannot give it back).
4. the cloud unreachable -> "unreachable": the edge may start (availability), and the
   SyncService's check on connect fences the journal if it turns out to be behind.

What the cloud cannot give back even when all entries are importable: personal data of players
registered in the lost window (`players`), KYC documents, HTTP idempotency answers, and the seed
chain secrets (the casino starts a new chain for each table; settled rounds stay verifiable).
"""
from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import nats
import structlog

from contract import journal as J
from contract import sync as S
from contract.canonical import canonical_json
from edge_agent.config import EdgeConfig
from edge_agent.journal.index import RoundIndex
from edge_agent.journal.store import BUSY_TIMEOUT_MS
from edge_agent.sync import cloud
from edge_agent.sync.service import KV_SENT, JournalConflict, inbox_prefix

log = structlog.get_logger("sync.reconcile")


@dataclass
class ReconcileResult:
    action: str          # in_sync | imported | unreachable
    local_seq: int       # before
    cloud_seq: int
    imported: int = 0
    source: str = ""


async def connect_edge(config: EdgeConfig, *, timeout: float = 5.0) -> Any:
    n = config.nats
    async def quiet(exc: Exception) -> None:
        log.info("reconcile: nats error", error=repr(exc))

    opts: dict[str, Any] = {"servers": n.servers, "name": f"edge-{config.edge_id}-reconcile",
                            "allow_reconnect": False, "max_reconnect_attempts": 1, "reconnect_time_wait": 0.2,
                            "connect_timeout": timeout, "inbox_prefix": inbox_prefix(config.edge_id),
                            "error_cb": quiet}
    if n.user:
        opts.update(user=n.user, password=n.password)
    return await asyncio.wait_for(nats.connect(**opts), timeout * 2 + 1)


async def reconcile_from_cloud(config: EdgeConfig, *, nc: Any = None, timeout: float = 5.0,
                               stream: str = S.JOURNAL_STREAM) -> ReconcileResult:
    """See the module doc. Raises `JournalConflict` when the edge must not start on this journal."""
    db = Path(config.db_path)
    own = nc is None
    local, _ = await asyncio.to_thread(_local_head, db)
    if own:
        try:
            nc = await connect_edge(config, timeout=timeout)
        except Exception as exc:  # noqa: BLE001
            log.warning("reconcile: cloud unreachable; starting on the local journal", error=repr(exc))
            return ReconcileResult("unreachable", local, -1)
    try:
        try:
            hwm, source = await cloud.query_hwm(nc, config.edge_id, timeout=timeout, stream=stream)
        except Exception as exc:  # noqa: BLE001
            log.warning("reconcile: no high-water mark; starting on the local journal", error=repr(exc))
            return ReconcileResult("unreachable", local, -1)
        if source == cloud.STREAM and hwm.seq == 0:
            # No control plane answered and the stream holds nothing of this edge (or does not
            # exist yet: a first start): there is nothing the cloud has that this journal lacks.
            return ReconcileResult("in_sync", local, 0, source=source)
        # The stream's last message is not necessarily its highest seq (see cloud.py): scan on.
        upto = hwm.seq if source == cloud.CONTROL_PLANE else 2**62
        if source == cloud.CONTROL_PLANE and hwm.seq <= local:
            await asyncio.to_thread(_check_hash_at, db, hwm)
            return ReconcileResult("in_sync", local, hwm.seq, source=source)
        # Ask whoever answered the high-water mark (a silent control plane would only time out).
        fetch = cloud.fetch_entries if source == cloud.CONTROL_PLANE else cloud.stream_entries
        entries = await fetch(nc, config.edge_id, max(local, 1), upto, timeout=timeout, stream=stream)
        top = max([hwm.seq] + [e.seq for e in entries])
        if top <= local:
            await asyncio.to_thread(_check_hash_at, db, hwm)
            return ReconcileResult("in_sync", local, top, source=source)
        n = await asyncio.to_thread(_import, db, entries, local, top)
        log.warning("reconcile: journal was behind the cloud; imported its entries", local_seq=local,
                    cloud_seq=top, imported=n)
        return ReconcileResult("imported", local, top, imported=n, source=source)
    finally:
        if own:
            await nc.close()


def _connect(db: Path) -> sqlite3.Connection:
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.executescript(resources.files("edge_agent.journal").joinpath("schema.sql").read_text())
    return conn


def _local_head(db: Path) -> tuple[int, str]:
    conn = _connect(db)
    try:
        row = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, J.GENESIS_PREV)
    finally:
        conn.close()


def _check_hash_at(db: Path, hwm: S.HighWaterMark) -> None:
    if hwm.seq == 0:
        return
    conn = _connect(db)
    try:
        row = conn.execute("SELECT hash FROM journal WHERE seq = ?", (hwm.seq,)).fetchone()
    finally:
        conn.close()
    if row is None or row[0] != hwm.hash:
        raise JournalConflict(f"the cloud's entry {hwm.seq} differs from this journal's: the chain forked")


def _import(db: Path, entries: list[S.SyncedEntry], local: int, top: int) -> int:
    conn = _connect(db)
    try:
        row = conn.execute("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").fetchone()
        seq0, head = (row[0], row[1]) if row else (0, J.GENESIS_PREV)
        if seq0 != local:
            raise JournalConflict("the journal changed during reconcile")
        by_seq = {e.seq: e for e in entries}
        if local > 0:
            anchor = by_seq.get(local)
            if anchor is None or anchor.hash != head:
                raise JournalConflict(f"the cloud's entry {local} differs from this journal's head: the chain forked")
        prev = head
        rows: list[tuple[Any, ...]] = []
        tail: list[dict[str, Any]] = []
        for s in range(local + 1, top + 1):
            e = by_seq.get(s)
            if e is None:
                raise JournalConflict(f"the cloud lacks entry {s} of {local + 1}..{top}: cannot import")
            if e.redacted:
                raise JournalConflict(f"the cloud holds entry {s} without its fields {e.redacted} (residency "
                                      "policy): restore a newer in-country copy instead")
            if e.prev != prev or J.entry_hash(e.seq, e.ts, e.kind, e.data, e.prev) != e.hash:
                raise JournalConflict(f"the cloud's entry {s} does not chain onto the journal")
            rows.append((e.seq, e.ts, e.kind, canonical_json(e.data).decode("utf-8"), e.prev, e.hash))
            tail.append({"seq": e.seq, "kind": e.kind, "data": e.data})
            prev = e.hash
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT INTO journal VALUES (?,?,?,?,?,?)", rows)
            index = RoundIndex(lambda sql, p=(): conn.execute(sql, p).fetchall())
            for e in tail:
                for sql, params in index.rows(e["seq"], e["kind"], e["data"]):
                    conn.execute(sql, params)
            conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (KV_SENT, str(top)))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return len(rows)
    finally:
        conn.close()
