"""Manual review queue for withdrawals held by AML (structuring): an operator approves or refuses."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from control_plane.adapters.db.models import aml_flags, withdrawals
from control_plane.domain.withdrawal import IN_REVIEW
from control_plane.services.withdrawals import as_dict, move, queue_refusal


class NotInReview(LookupError):
    pass


class Reviews:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def queue(self) -> list[dict[str, Any]]:
        return queue(self.engine)

    def decide(self, withdrawal_id: str, approve: bool, reason: str) -> dict[str, Any]:
        """Raises NotInReview when the withdrawal is not (or no longer) awaiting review."""
        return decide(self.engine, withdrawal_id, approve, reason)


def queue(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(select(withdrawals).where(withdrawals.c.status == IN_REVIEW)
                         .order_by(withdrawals.c.created_ts)).mappings().all()
        out = []
        for r in rows:
            flags = c.execute(select(aml_flags.c.kind, aml_flags.c.detail)
                              .where(aml_flags.c.ref_id == r["withdrawal_id"])).all()
            out.append({**as_dict(r), "flags": [{"kind": f.kind, "detail": f.detail} for f in flags]})
    return out


def decide(engine: Engine, withdrawal_id: str, approve: bool, reason: str) -> dict[str, Any]:
    with engine.begin() as c:
        row = c.execute(select(withdrawals).where(withdrawals.c.withdrawal_id == withdrawal_id)).mappings().first()
        if row is None or row["status"] != IN_REVIEW:
            raise NotInReview(withdrawal_id)
        status = "approved" if approve else "refused"
        why = reason or ("operator_approved" if approve else "operator_refused")
        if not move(c, withdrawal_id, IN_REVIEW, status, reason=why):
            raise NotInReview(withdrawal_id)
        if not approve:
            queue_refusal(c, row, why)
    return {"withdrawal_id": withdrawal_id, "status": status, "reason": why}
