"""Signed checkpoints (RFC 6962 tree heads) from edges: signature, append-only consistency, and a
recomputation of the root from the entry hashes the cloud holds.

Signature and tree are `contract.checkpoint` / `contract.merkle.MerkleLog`, the edge's own code.
The tree over an edge's held entries is kept incrementally (`HeldTrees`): a checkpoint reads only
the entries received since the previous one, never every held leaf again."""
from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, select, update

from contract import checkpoint, merkle
from control_plane.adapters.db.models import checkpoints, edge_sync, edges, entries
from control_plane.clock import now_ms
from control_plane.metrics import Metrics
from control_plane.services.audit import raise_flag


class CheckpointMsg(BaseModel):
    model_config = ConfigDict(extra="ignore")
    edge_id: str
    size: int = Field(ge=1)
    root: str
    ts: int
    sig: str
    prev_size: int | None = None
    consistency: list[str] = Field(default_factory=list)


def verify_signature(public_pem: str, msg: CheckpointMsg) -> bool:
    """Domain-separated only (contract.checkpoint): a signature over the bare body is refused."""
    return bool(checkpoint.verify_signature(msg.model_dump(), public_pem))


class HeldTrees:
    """Per edge, the incremental Merkle tree over the entry hashes the cloud holds, from seq 1."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._trees: dict[str, merkle.MerkleLog] = {}
        self._lock = threading.Lock()

    def _fetch(self, edge_id: str) -> merkle.FetchLeaves:
        def fetch(a: int, b: int) -> list[bytes]:  # leaves [a, b) = seqs a+1..b
            with self._engine.connect() as c:
                return [bytes.fromhex(h) for h in c.execute(
                    select(entries.c.hash).where(entries.c.edge_id == edge_id, entries.c.seq > a, entries.c.seq <= b)
                    .order_by(entries.c.seq)).scalars()]
        return fetch

    def _tree(self, c: Connection, edge_id: str, size: int) -> merkle.MerkleLog | None:
        # Caller holds the lock: appends and reads of one tree never interleave.
        head = c.execute(select(edge_sync.c.head_seq).where(edge_sync.c.edge_id == edge_id)).scalar() or 0
        if head < size:
            return None
        t = self._trees.get(edge_id)
        if t is None:
            t = self._trees[edge_id] = merkle.MerkleLog(self._fetch(edge_id))
        if t.size < size:
            rows = c.execute(select(entries.c.seq, entries.c.hash).where(
                entries.c.edge_id == edge_id, entries.c.seq > t.size, entries.c.seq <= size)
                .order_by(entries.c.seq)).all()
            if len(rows) != size - t.size or (rows and rows[0][0] != t.size + 1):
                return None
            t.extend([bytes.fromhex(h) for _, h in rows])
        return t

    def root(self, c: Connection, edge_id: str, size: int) -> bytes | None:
        """The root over entries 1..size, when the cloud holds them contiguously."""
        with self._lock:
            t = self._tree(c, edge_id, size)
            return t.root(size) if t is not None else None

    def inclusion_proof(self, c: Connection, edge_id: str, index: int, size: int) -> list[bytes] | None:
        with self._lock:
            t = self._tree(c, edge_id, size)
            return t.inclusion_proof(index, size) if t is not None else None


class CheckpointService:
    def __init__(self, engine: Engine, metrics: Metrics) -> None:
        self.engine, self.metrics = engine, metrics
        self.trees = HeldTrees(engine)

    def receive(self, subject_edge: str, raw: dict[str, Any]) -> str:
        """Verify and store one checkpoint; returns ok | duplicate | rejected | inconsistent."""
        with self.engine.begin() as c:
            try:
                msg = CheckpointMsg.model_validate(raw)
            except ValueError as exc:
                raise_flag(c, self.metrics, subject_edge, "checkpoint_malformed", None, str(exc)[:500])
                return "rejected"
            edge_id = subject_edge
            if msg.edge_id != edge_id:
                raise_flag(c, self.metrics, edge_id, "checkpoint_wrong_edge", msg.size, f"names {msg.edge_id}")
                return "rejected"
            key = c.execute(select(edges.c.checkpoint_public_key).where(edges.c.id == edge_id)).scalar()
            if not key:
                raise_flag(c, self.metrics, edge_id, "checkpoint_unknown_key", msg.size, "edge has no registered key")
                return "rejected"
            if not verify_signature(key, msg):
                raise_flag(c, self.metrics, edge_id, "checkpoint_bad_signature", msg.size, "signature does not verify")
                return "rejected"
            same = c.execute(select(checkpoints.c.root).where(checkpoints.c.edge_id == edge_id,
                                                              checkpoints.c.size == msg.size)).scalar()
            if same is not None:
                if same == msg.root:
                    return "duplicate"
                raise_flag(c, self.metrics, edge_id, "checkpoint_fork", msg.size,
                           f"two signed roots for size {msg.size}: {same} and {msg.root}")
                return "inconsistent"
            status = self._consistency(c, edge_id, msg)
            c.execute(checkpoints.insert().values(
                edge_id=edge_id, size=msg.size, root=msg.root, ts=msg.ts, sig=msg.sig, prev_size=msg.prev_size,
                status=status, entries_check=None, received_ts=now_ms()))
            self._check_entries(c, edge_id, msg.size, msg.root)
            return status

    def _consistency(self, c: Connection, edge_id: str, msg: CheckpointMsg) -> str:
        prior = c.execute(select(checkpoints.c.size, checkpoints.c.root).where(
            checkpoints.c.edge_id == edge_id, checkpoints.c.size < msg.size)
            .order_by(checkpoints.c.size.desc()).limit(1)).first()
        if prior is None:
            return "ok"  # the first head we see: nothing earlier to be consistent with
        if msg.prev_size != prior.size:
            # The proof is from another head than the one we hold: check it against that one if we
            # hold it; the entry recomputation still covers the rest.
            base = c.execute(select(checkpoints.c.size, checkpoints.c.root).where(
                checkpoints.c.edge_id == edge_id, checkpoints.c.size == (msg.prev_size or -1))).first()
            if base is None:
                raise_flag(c, self.metrics, edge_id, "checkpoint_unproven", msg.size,
                           f"no consistency proof from held size {prior.size}")
                return "ok"
            prior = base
        try:
            proof = [bytes.fromhex(h) for h in msg.consistency]
            ok = merkle.verify_consistency(prior.size, msg.size, bytes.fromhex(prior.root),
                                           bytes.fromhex(msg.root), proof)
        except ValueError:
            ok = False
        if ok:
            return "ok"
        raise_flag(c, self.metrics, edge_id, "checkpoint_inconsistent", msg.size,
                   f"size {msg.size} is not an append-only extension of size {prior.size}: history rewritten")
        return "inconsistent"

    def _check_entries(self, c: Connection, edge_id: str, size: int, root_hex: str) -> bool:
        held_root = self.trees.root(c, edge_id, size)
        if held_root is None:
            return False
        verdict = "ok" if held_root.hex() == root_hex else "mismatch"
        c.execute(update(checkpoints).where(checkpoints.c.edge_id == edge_id, checkpoints.c.size == size)
                  .values(entries_check=verdict))
        if verdict == "mismatch":
            raise_flag(c, self.metrics, edge_id, "checkpoint_root_mismatch", size,
                       "root recomputed from the received entries differs from the signed root")
        return True

    def check_pending(self) -> int:
        """Checkpoints that arrived before their entries: check them once the entries are held."""
        n = 0
        with self.engine.begin() as c:
            rows = c.execute(select(checkpoints.c.edge_id, checkpoints.c.size, checkpoints.c.root)
                             .where(checkpoints.c.entries_check.is_(None))).all()
            for r in rows:
                n += self._check_entries(c, r.edge_id, r.size, r.root)
        return n

    def covering(self, edge_id: str, seq: int) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            row = c.execute(select(checkpoints).where(
                checkpoints.c.edge_id == edge_id, checkpoints.c.size >= seq, checkpoints.c.status == "ok")
                .order_by(checkpoints.c.size).limit(1)).mappings().first()
            if row is None:
                return None
            out: dict[str, Any] = {k: row[k] for k in ("edge_id", "size", "root", "ts", "sig", "status",
                                                       "entries_check")}
            held = c.execute(select(entries.c.hash).where(entries.c.edge_id == edge_id, entries.c.seq == seq)).scalar()
            proof = (self.trees.inclusion_proof(c, edge_id, seq - 1, row["size"])
                     if held is not None and 1 <= seq <= row["size"] else None)
        if proof is not None:
            out["leaf_index"] = seq - 1
            out["entry_hash"] = held
            out["inclusion_proof"] = [p.hex() for p in proof]
        return out
