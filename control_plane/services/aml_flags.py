"""AML flags raised by the processor, for operators and regulators."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from control_plane.adapters.db.models import aml_flags


class AmlFlags:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def listing(self, *, player: str | None = None, kind: str | None = None, jurisdiction: str | None = None,
                limit: int = 1000) -> list[dict[str, Any]]:
        q = select(aml_flags).order_by(aml_flags.c.id)
        if player:
            q = q.where(aml_flags.c.player == player)
        if kind:
            q = q.where(aml_flags.c.kind == kind)
        if jurisdiction is not None:
            q = q.where(aml_flags.c.jurisdiction == jurisdiction)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(q.limit(limit)).mappings()]
