"""Deposits in the database: reads for the API and the state machine's moves as compare-and-set
updates (control_plane/domain/deposit.py holds the rules)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, select, update

from control_plane.adapters.db.models import deposits
from control_plane.clock import now_ms
from control_plane.domain.deposit import DepositStatus, transition


def move(c: Connection, deposit_id: str, current: DepositStatus, target: DepositStatus, **values: Any) -> bool:
    """current -> target if the row is still `current` (False when someone else moved it first)."""
    transition(current, target)
    n: int = c.execute(update(deposits).where(deposits.c.deposit_id == deposit_id, deposits.c.status == current)
                       .values(status=target, updated_ts=now_ms(), **values)).rowcount
    return n > 0


class Deposits:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, deposit_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(select(deposits).where(deposits.c.deposit_id == deposit_id)).mappings().first()
        return dict(r) if r else None
