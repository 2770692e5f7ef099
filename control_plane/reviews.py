"""Manual review queue for withdrawals held by AML (structuring): operator approves or refuses."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, update

from control_plane.db.models import aml_flags, withdrawals
from control_plane.processor import queue_refusal
from control_plane.util import now_ms


class NotInReview(LookupError):
    pass


def queue(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(select(withdrawals).where(withdrawals.c.status == "review")
                         .order_by(withdrawals.c.created_ts)).mappings().all()
        out = []
        for r in rows:
            flags = c.execute(select(aml_flags.c.kind, aml_flags.c.detail)
                              .where(aml_flags.c.ref_id == r["withdrawal_id"])).all()
            out.append({**_withdrawal(r), "flags": [{"kind": f.kind, "detail": f.detail} for f in flags]})
    return out


def decide(engine: Engine, withdrawal_id: str, approve: bool, reason: str) -> dict[str, Any]:
    with engine.begin() as c:
        row = c.execute(select(withdrawals).where(withdrawals.c.withdrawal_id == withdrawal_id)).mappings().first()
        if row is None or row["status"] != "review":
            raise NotInReview(withdrawal_id)
        status = "approved" if approve else "refused"
        why = reason or ("operator_approved" if approve else "operator_refused")
        moved = c.execute(update(withdrawals).where(withdrawals.c.withdrawal_id == withdrawal_id,
                                                    withdrawals.c.status == "review")
                          .values(status=status, reason=why, updated_ts=now_ms())).rowcount
        if not moved:
            raise NotInReview(withdrawal_id)
        if not approve:
            queue_refusal(c, row, why)
    return {"withdrawal_id": withdrawal_id, "status": status, "reason": why}


def _withdrawal(r: Any) -> dict[str, Any]:
    return {k: r[k] for k in ("withdrawal_id", "edge_id", "jurisdiction", "player", "amount", "currency", "rail",
                              "status", "reason", "rail_ref", "created_ts")}


def get(engine: Engine, withdrawal_id: str) -> dict[str, Any] | None:
    with engine.connect() as c:
        r = c.execute(select(withdrawals).where(withdrawals.c.withdrawal_id == withdrawal_id)).mappings().first()
    return _withdrawal(r) if r else None
