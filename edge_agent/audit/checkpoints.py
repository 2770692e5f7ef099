"""Checkpoints at the edge: the tree over this journal, and the publisher that signs it.

A checkpoint is an RFC 6962 signed tree head over the journal (leaf i = the 32 raw bytes of
entry (i+1)'s `hash`); its wire form, signing and verification are `contract.checkpoint`, the
incremental tree `contract.merkle.MerkleLog` — the same code the cloud and regulators run. The
edge sends one on `casino.checkpoint.<edge_id>` every interval, with a consistency proof from the
previous one it sent: a journal can only grow. A regulator checks a round against a checkpoint
fetched from the cloud with an inclusion proof (`inclusion_proof_for`, `verify_entry_inclusion`).

Cost: the tree keeps the hashes of complete aligned subtrees of 256 leaves and above, plus the
leaves of the last partial chunk, read back from the journal on demand (~260 kB at 1M entries).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract.canonical import canonical_json
from contract.checkpoint import (
    SIGNING_CONTEXT,
    CheckResult,
    make_checkpoint,
    root_of_entries,
    signed_message,
    verify_checkpoint,
    verify_entry_inclusion,
    verify_signature,
)
from contract.merkle import EMPTY_ROOT, FetchLeaves, MerkleLog
from contract.sync import checkpoint_subject

if TYPE_CHECKING:
    from edge_agent.casino import Casino

__all__ = ["EMPTY_ROOT", "KV_LAST", "SIGNING_CONTEXT", "CheckResult", "CheckpointPublisher", "MerkleLog",
           "extend_from_journal", "inclusion_proof_for", "journal_fetcher", "make_checkpoint", "root_of_entries",
           "signed_message", "tree_from_journal", "verify_checkpoint", "verify_entry_inclusion",
           "verify_signature"]

log = structlog.get_logger("checkpoints")

KV_LAST = "checkpoint.last"  # kv key: the last checkpoint published (JSON)


# --- reading leaves from a journal ------------------------------------------------------------

def _conn(db: Any) -> tuple[Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]], Callable[[], None]]:
    """(query, close) over a path, a sqlite3 connection or a JournalStore."""
    if isinstance(db, (str, Path)):
        c = sqlite3.connect(f"file:{Path(db)}?mode=ro", uri=True, check_same_thread=False)
        c.execute("PRAGMA busy_timeout = 5000")
        return (lambda sql, p=(): c.execute(sql, p).fetchall()), c.close
    if isinstance(db, sqlite3.Connection):
        return (lambda sql, p=(): db.execute(sql, p).fetchall()), (lambda: None)
    return (lambda sql, p=(): db.query(sql, p)), (lambda: None)


def journal_fetcher(query: Callable[..., list[tuple[Any, ...]]]) -> FetchLeaves:
    def fetch(a: int, b: int) -> list[bytes]:
        rows = query("SELECT hash FROM journal WHERE seq > ? AND seq <= ? ORDER BY seq", (a, b))
        return [bytes.fromhex(r[0]) for r in rows]
    return fetch


def extend_from_journal(tree: MerkleLog, query: Callable[..., list[tuple[Any, ...]]], upto: int,
                        batch: int = 65_536) -> None:
    while tree.size < upto:
        first = tree.size + 1
        rows = query("SELECT seq, hash FROM journal WHERE seq > ? AND seq <= ? ORDER BY seq",
                     (tree.size, min(upto, tree.size + batch)))
        if not rows:
            raise LookupError(f"journal has no entry {first}")
        if rows[0][0] != first or rows[-1][0] != first + len(rows) - 1:
            raise LookupError(f"journal gap after seq {tree.size}")
        tree.extend([bytes.fromhex(h) for _, h in rows])


def tree_from_journal(db: Any, size: int | None = None) -> MerkleLog:
    query, _close = _conn(db)
    if size is None:
        size = query("SELECT COALESCE(MAX(seq), 0) FROM journal", ())[0][0]
    tree = MerkleLog(journal_fetcher(query))
    extend_from_journal(tree, query, size)
    tree._close = _close  # type: ignore[attr-defined]
    return tree


def inclusion_proof_for(db: Any, seq: int, size: int, *, tree: MerkleLog | None = None) -> dict[str, Any]:
    """The inclusion proof of entry `seq` in the journal's tree of `size` entries.

    `db`: a journal path, a sqlite3 connection or a JournalStore. Pass a `tree` already built
    (e.g. the regulator API's cache) to avoid reading the journal up to `size`.
    """
    query, close = _conn(db)
    try:
        if tree is None:
            tree = MerkleLog(journal_fetcher(query))
            extend_from_journal(tree, query, size)
        elif tree.size < size:
            extend_from_journal(tree, query, size)
        row = query("SELECT hash FROM journal WHERE seq = ?", (seq,))
        if not row or not 1 <= seq <= size:
            raise LookupError(f"no entry {seq} within the first {size}")
        proof = tree.inclusion_proof(seq - 1, size)
        return {"seq": seq, "hash": row[0][0], "size": size, "root": tree.root(size).hex(),
                "proof": [p.hex() for p in proof]}
    finally:
        close()


# --- the publisher ----------------------------------------------------------------------------

class CheckpointPublisher:
    """Every `interval_s`, sign the tree over the durable journal and publish it.

    `publish(subject, payload)` sends the canonical JSON bytes (NATS/JetStream in production).
    The last checkpoint successfully published is kept in kv `checkpoint.last`, so proofs chain
    across restarts. A publish that fails is retried at the next tick, still proving
    consistency from the last one that went out. The tree is built once from the journal (in a
    worker thread) and then extended by the new entries at each tick.
    """

    def __init__(self, casino: Casino, signing_key: Ed25519PrivateKey,
                 publish: Callable[[str, bytes], Awaitable[Any]], interval_s: float = 30.0) -> None:
        self.casino = casino
        self.signing_key = signing_key
        self.publish = publish
        self.interval_s = interval_s
        self.edge_id: str = casino.config.edge_id
        self.subject = checkpoint_subject(self.edge_id)
        self.tree: MerkleLog | None = None
        self._conn: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.last: dict[str, Any] | None = None
        self.published = 0
        self.failures = 0
        last = casino.store.setting(KV_LAST)
        if last is not None:
            try:
                self.last = json.loads(last)
            except ValueError:
                self.last = None

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._conn is None:
            self._conn = sqlite3.connect(f"file:{self.casino.store.path}?mode=ro", uri=True,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout = 5000")
        return self._conn.execute(sql, params).fetchall()

    def _build(self, upto: int, prev: dict[str, Any] | None, ts: int) -> dict[str, Any]:
        if self.tree is None:
            self.tree = MerkleLog(journal_fetcher(self._query))
        extend_from_journal(self.tree, self._query, upto)
        return make_checkpoint(self.tree, prev, self.signing_key, self.edge_id, ts=ts)

    async def publish_now(self) -> dict[str, Any] | None:
        """Build and publish a checkpoint of the durable journal; None when nothing is new."""
        async with self._lock:
            upto = self.casino.store.durable_seq
            prev = self.last
            if prev is not None and upto <= prev["size"]:
                if upto < prev["size"]:
                    # A restored journal behind its last checkpoint: wait for the gap to be
                    # reconciled from the cloud before claiming anything new.
                    log.warning("journal behind last checkpoint", size=upto, checkpoint=prev["size"])
                return None
            ts = max(self.casino.clock(), prev["ts"] if prev else 0)
            cp = await asyncio.to_thread(self._build, upto, prev, ts)
            payload = canonical_json(cp)
            try:
                await self.publish(self.subject, payload)
            except Exception as exc:  # noqa: BLE001 - retried next tick from the same previous checkpoint
                self.failures += 1
                log.warning("checkpoint publish failed", error=str(exc), size=cp["size"])
                return None
            self.last = cp
            self.published += 1
            self.casino.store.put_setting(KV_LAST, payload.decode())
            return cp

    async def _run(self) -> None:
        while True:
            try:
                await self.publish_now()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("checkpoint tick failed")
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="checkpoints")

    async def stop(self, *, final: bool = True) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if final:
            try:
                await self.publish_now()
            except Exception:  # noqa: BLE001
                log.warning("final checkpoint failed")
        if self._conn is not None:
            self._conn.close()
            self._conn = None
