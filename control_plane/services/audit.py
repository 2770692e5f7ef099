"""Audit flags and the global audit view per edge: contiguity, hash-chain continuity, flags, checkpoints."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, func, select

from contract import journal as J
from control_plane.adapters.db.models import audit_flags, checkpoints, edge_sync, entries
from control_plane.adapters.db.sql import insert_ignore
from control_plane.clock import now_ms
from control_plane.domain.audit import CHAIN_FLAGS, SERIOUS_FLAGS, open_gaps
from control_plane.metrics import Metrics


def raise_flag(conn: Connection, metrics: Metrics | None, edge_id: str, kind: str, seq: int | None,
               detail: str) -> None:
    """Record an audit flag once per (edge, kind, seq), in the caller's transaction."""
    if insert_ignore(conn, audit_flags, {"edge_id": edge_id, "kind": kind, "seq": seq, "detail": detail,
                                         "ts": now_ms()}) and metrics is not None:
        metrics.audit_flags.labels(edge_id, kind).inc()


class AuditService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def edge_audit(self, edge_id: str) -> dict[str, Any] | None:
        """None when nothing was ever received from the edge."""
        with self.engine.connect() as c:
            sync = c.execute(select(edge_sync).where(edge_sync.c.edge_id == edge_id)).mappings().first()
            flags = c.execute(select(audit_flags).where(audit_flags.c.edge_id == edge_id)
                              .order_by(audit_flags.c.id)).mappings().all()
            if sync is None and not flags:
                return None
            head = sync["head_seq"] if sync else 0
            beyond = c.execute(select(entries.c.seq).where(entries.c.edge_id == edge_id, entries.c.seq > head)
                               .order_by(entries.c.seq).limit(10_000)).scalars().all()
            held = c.execute(select(func.count()).select_from(entries).where(entries.c.edge_id == edge_id)).scalar()
            cps = c.execute(select(checkpoints).where(checkpoints.c.edge_id == edge_id)
                            .order_by(checkpoints.c.size)).mappings().all()
        flag_list = [{"kind": f["kind"], "seq": f["seq"], "detail": f["detail"], "ts": f["ts"]} for f in flags]
        kinds = {f["kind"] for f in flag_list}
        gaps = open_gaps(list(beyond), head)
        return {
            "edge_id": edge_id,
            "contiguous_seq": head,
            "head_hash": sync["head_hash"] if sync else J.GENESIS_PREV,
            "max_seq": sync["max_seq"] if sync else 0,
            "entries_held": held,
            "open_gaps": gaps,
            "chain_ok": not (kinds & CHAIN_FLAGS),
            "ok": not (kinds & SERIOUS_FLAGS) and not gaps,
            "flags": flag_list,
            "checkpoints": [{k: cp[k] for k in ("size", "root", "ts", "status", "entries_check")} for cp in cps],
        }
