"""Global audit view per edge: contiguity, hash-chain continuity, flags, checkpoints."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from contract import journal as J
from control_plane.db.models import audit_flags, checkpoints, edge_sync, entries


def open_gaps(held_seqs: list[int], head: int) -> list[list[int]]:
    """Missing [from, to] ranges above the contiguous head, given the seqs held beyond it."""
    gaps, expect = [], head + 1
    for s in held_seqs:
        if s > expect:
            gaps.append([expect, s - 1])
        expect = s + 1
    return gaps


def edge_audit(engine: Engine, edge_id: str) -> dict[str, Any] | None:
    with engine.connect() as c:
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
    serious = kinds & {"fork", "chain_break", "hash_mismatch", "checkpoint_inconsistent",
                       "checkpoint_root_mismatch", "checkpoint_fork", "checkpoint_bad_signature"}
    return {
        "edge_id": edge_id,
        "contiguous_seq": head,
        "head_hash": sync["head_hash"] if sync else J.GENESIS_PREV,
        "max_seq": sync["max_seq"] if sync else 0,
        "entries_held": held,
        "open_gaps": gaps,
        "chain_ok": not (kinds & {"fork", "chain_break", "hash_mismatch"}),
        "ok": not serious and not gaps,
        "flags": flag_list,
        "checkpoints": [{k: cp[k] for k in ("size", "root", "ts", "status", "entries_check")} for cp in cps],
    }
