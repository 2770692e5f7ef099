"""Signed checkpoints (RFC 6962 tree heads) from edges: signature, append-only consistency, and a
recomputation of the root from the entry hashes the cloud holds."""
from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, select, update

from contract import merkle
from contract.canonical import canonical_json
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

    def signed_bytes(self) -> bytes:
        return canonical_json({"edge_id": self.edge_id, "size": self.size, "root": self.root, "ts": self.ts})


# The edge signs with a domain-separation prefix (edge_agent/audit/checkpoints.py); a bare canonical
# body is accepted too (the form first specified). Both bind the same four fields.
SIGNING_CONTEXT = b"casino-checkpoint/v1\n"


def verify_signature(public_pem: str, msg: CheckpointMsg) -> bool:
    try:
        key = serialization.load_pem_public_key(public_pem.encode())
        if not isinstance(key, Ed25519PublicKey):
            return False
        sig = bytes.fromhex(msg.sig)
    except ValueError:
        return False
    for signed in (SIGNING_CONTEXT + msg.signed_bytes(), msg.signed_bytes()):
        try:
            key.verify(sig, signed)
            return True
        except InvalidSignature:
            continue
    return False


def held_leaves(c: Connection, edge_id: str, size: int) -> list[bytes] | None:
    """Entry hashes 1..size when the cloud holds them contiguously, else None."""
    head = c.execute(select(edge_sync.c.head_seq).where(edge_sync.c.edge_id == edge_id)).scalar() or 0
    if head < size:
        return None
    rows = c.execute(select(entries.c.hash).where(entries.c.edge_id == edge_id, entries.c.seq <= size)
                     .order_by(entries.c.seq)).scalars().all()
    return [bytes.fromhex(h) for h in rows]


class CheckpointService:
    def __init__(self, engine: Engine, metrics: Metrics) -> None:
        self.engine, self.metrics = engine, metrics

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
        leaves = held_leaves(c, edge_id, size)
        if leaves is None:
            return False
        verdict = "ok" if merkle.root(leaves).hex() == root_hex else "mismatch"
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
            leaves = held_leaves(c, edge_id, row["size"])
        if leaves is not None and 1 <= seq <= row["size"]:
            out["leaf_index"] = seq - 1
            out["entry_hash"] = leaves[seq - 1].hex()
            out["inclusion_proof"] = [p.hex() for p in merkle.inclusion_proof(leaves, seq - 1)]
        return out
