"""Manual review queue for withdrawals held by AML (structuring): an operator approves or refuses."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from control_plane.adapters.db.models import aml_flags, withdrawals
from control_plane.domain.withdrawal import IN_REVIEW
from control_plane.services import operator_log
from control_plane.services.withdrawals import as_dict, move, queue_refusal


class NotInReview(LookupError):
    pass


class OutsideJurisdiction(PermissionError):
    pass


class Reviews:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def queue(self, jurisdiction: str | None = None) -> list[dict[str, Any]]:
        """Oldest first; `jurisdiction` None: every jurisdiction."""
        return queue(self.engine, jurisdiction)

    def decide(self, withdrawal_id: str, approve: bool, reason: str, *, by: str,
               jurisdiction: str | None = None) -> dict[str, Any]:
        """Raises NotInReview when the withdrawal is not (or no longer) awaiting review, or is outside
        `jurisdiction` (when given). The decision and its operator record commit together."""
        return decide(self.engine, withdrawal_id, approve, reason, by=by, jurisdiction=jurisdiction)


def queue(engine: Engine, jurisdiction: str | None = None) -> list[dict[str, Any]]:
    q = select(withdrawals).where(withdrawals.c.status == IN_REVIEW).order_by(withdrawals.c.created_ts)
    if jurisdiction is not None:
        q = q.where(withdrawals.c.jurisdiction == jurisdiction)
    with engine.connect() as c:
        rows = c.execute(q).mappings().all()
        out = []
        for r in rows:
            flags = c.execute(select(aml_flags.c.kind, aml_flags.c.detail)
                              .where(aml_flags.c.ref_id == r["withdrawal_id"])).all()
            out.append({**as_dict(r), "flags": [{"kind": f.kind, "detail": f.detail} for f in flags]})
    return out


def decide(engine: Engine, withdrawal_id: str, approve: bool, reason: str, *, by: str,
           jurisdiction: str | None = None) -> dict[str, Any]:
    with engine.begin() as c:
        row = c.execute(select(withdrawals).where(withdrawals.c.withdrawal_id == withdrawal_id)).mappings().first()
        if row is None or row["status"] != IN_REVIEW:
            raise NotInReview(withdrawal_id)
        if jurisdiction is not None and row["jurisdiction"] != jurisdiction:
            raise OutsideJurisdiction(withdrawal_id)
        status = "approved" if approve else "refused"
        why = reason or ("operator_approved" if approve else "operator_refused")
        if not move(c, withdrawal_id, IN_REVIEW, status, reason=why):
            raise NotInReview(withdrawal_id)
        if not approve:
            queue_refusal(c, row, why)
        operator_log.record(c, operator=by, jurisdiction=row["jurisdiction"],
                            action="review.approve" if approve else "review.refuse", target=withdrawal_id,
                            reason=why, detail={"amount": row["amount"], "currency": row["currency"],
                                                "player": row["player"]})
    return {"withdrawal_id": withdrawal_id, "status": status, "reason": why}
