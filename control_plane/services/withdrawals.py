"""Withdrawals in the database: reads for the API and the state machine's moves as compare-and-set
updates (control_plane/domain/withdrawal.py holds the rules)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from contract import sync as S
from control_plane.adapters import outbox
from control_plane.adapters.db.models import withdrawals
from control_plane.clock import now_ms
from control_plane.domain.withdrawal import WithdrawalStatus, transition
from control_plane.ports.payout_rail import PayoutRail

FIELDS = ("withdrawal_id", "edge_id", "jurisdiction", "player", "amount", "currency", "rail", "status", "reason",
          "rail_ref", "created_ts")


def move(c: Connection, withdrawal_id: str, current: WithdrawalStatus, target: WithdrawalStatus,
         **values: Any) -> bool:
    """current -> target if the row is still `current` (False when someone else moved it first)."""
    transition(current, target)
    n: int = c.execute(update(withdrawals).where(withdrawals.c.withdrawal_id == withdrawal_id,
                                                 withdrawals.c.status == current)
                       .values(status=target, updated_ts=now_ms(), **values)).rowcount
    return n > 0


def queue_refusal(c: Connection, w: Mapping[str, Any], reason: str) -> None:
    """Tell the player's edge the withdrawal is refused (it releases the held amount)."""
    outbox.enqueue(c, w["edge_id"], S.PayoutResult(
        id=outbox.payout_result_id(w["withdrawal_id"]), ts=now_ms(), withdrawal_id=w["withdrawal_id"],
        player=w["player"], status="refused", reason=reason, rail=w["rail"]))


def as_dict(r: Mapping[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in FIELDS}


class Withdrawals:
    def __init__(self, engine: Engine, rails: Mapping[str, PayoutRail] | None = None) -> None:
        self.engine = engine
        self.rails: Mapping[str, PayoutRail] = rails or {}

    def get(self, withdrawal_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(select(withdrawals).where(withdrawals.c.withdrawal_id == withdrawal_id)).mappings().first()
        return as_dict(r) if r else None

    def listing(self, jurisdiction: str | None, statuses: tuple[str, ...] = (), limit: int = 200
                ) -> list[dict[str, Any]]:
        """Newest first, with `updated_ts` (when the payout status last moved)."""
        q = select(withdrawals).order_by(withdrawals.c.created_ts.desc(), withdrawals.c.withdrawal_id).limit(limit)
        if jurisdiction is not None:
            q = q.where(withdrawals.c.jurisdiction == jurisdiction)
        if statuses:
            q = q.where(withdrawals.c.status.in_(statuses))
        with self.engine.connect() as c:
            rows = [{**as_dict(r), "updated_ts": r["updated_ts"]} for r in c.execute(q).mappings()]
        for w in rows:  # a payout under way: what the rail says of it (e.g. crypto confirmations)
            rail = self.rails.get(w["rail"]) if w["status"] == "paying" else None
            p = rail.status(w["withdrawal_id"]) if rail is not None else None
            w["rail_status"] = {"status": p.status, "confirmations": p.confirmations} if p else None
        return rows
