"""The operator action log: every decision an operator takes through the API, written in the same
transaction as the decision (an action without its record cannot commit)."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Engine, select

from control_plane.adapters.db.models import operator_actions
from control_plane.clock import now_ms


def record(c: Connection, *, operator: str, jurisdiction: str, action: str, target: str, reason: str,
           detail: dict[str, Any] | None = None) -> None:
    c.execute(operator_actions.insert().values(
        ts=now_ms(), operator=operator, jurisdiction=jurisdiction, action=action, target=target,
        reason=reason, detail=json.dumps(detail or {}, sort_keys=True)))


class OperatorLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def listing(self, jurisdiction: str | None, limit: int = 200) -> list[dict[str, Any]]:
        """Newest first; `jurisdiction` None: every jurisdiction."""
        q = select(operator_actions).order_by(operator_actions.c.id.desc()).limit(limit)
        if jurisdiction is not None:
            q = q.where(operator_actions.c.jurisdiction == jurisdiction)
        with self.engine.connect() as c:
            return [{**dict(r), "detail": json.loads(r["detail"])} for r in c.execute(q).mappings()]
