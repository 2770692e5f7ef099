"""Tables of each edge as the cloud knows them (a projection of the edge's journal), and operator
table actions sent to the edge as `table.control` commands (carried out by the edge, which journals
the result; the projection then shows it)."""
from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy import Connection, Engine, select, update

from contract import journal as J
from contract import sync as S
from control_plane.adapters import outbox
from control_plane.adapters.db.models import edge_tables, edges
from control_plane.adapters.db.sql import insert_ignore
from control_plane.clock import now_ms
from control_plane.services import operator_log

KINDS = frozenset({S.TABLE_RULES, S.TABLE_STATUS, S.TABLE_FEED, J.ROUND_OPENED, J.ROUND_SETTLED, J.ROUND_VOIDED})
Action = Literal["enable", "disable", "void"]


def project(c: Connection, edge_id: str, seq: int, kind: str, d: dict[str, Any]) -> None:
    """Fold one applied entry of `KINDS` into `edge_tables` (in the applier's transaction). Entries
    arrive in any order after a partition: a row only moves forward in seq."""
    table_id = d.get("table_id")
    if not isinstance(table_id, str) or not table_id:
        return  # redacted by the residency policy, or not a table entry
    # ON CONFLICT DO NOTHING: two appliers of one edge (a replica taking over) never fail a batch here.
    insert_ignore(c, edge_tables, {"edge_id": edge_id, "table_id": table_id, "game": str(d.get("game", "")),
                                   "enabled": True, "status_reason": "", "last_void_reason": "",
                                   "updated_seq": 0, "updated_ts": now_ms()})
    values: dict[str, Any] = {"updated_seq": seq, "updated_ts": now_ms()}
    if kind == S.TABLE_RULES:
        values["game"] = str(d.get("game", ""))
    elif kind == S.TABLE_STATUS:
        values.update(enabled=bool(d.get("enabled")), status_reason=str(d.get("reason", ""))[:256])
    elif kind == S.TABLE_FEED:
        values["feed_live"] = bool(d.get("live"))
    elif kind == J.ROUND_OPENED:
        values.update(round_chain=str(d.get("chain_id", "")), round_n=int(d.get("n", 0)) or None)
        if d.get("game"):
            values["game"] = str(d["game"])
    elif kind in (J.ROUND_SETTLED, J.ROUND_VOIDED):
        values.update(round_chain=None, round_n=None)
        if kind == J.ROUND_VOIDED:
            values.update(last_void_n=int(d.get("n", 0)) or None, last_void_reason=str(d.get("reason", ""))[:256])
    c.execute(update(edge_tables).where(edge_tables.c.edge_id == edge_id, edge_tables.c.table_id == table_id,
                                        edge_tables.c.updated_seq <= seq).values(**values))


class UnknownTable(LookupError):
    pass


class NoRound(LookupError):
    pass


class Tables:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def listing(self, jurisdiction: str | None) -> list[dict[str, Any]]:
        q = (select(edge_tables, edges.c.jurisdiction).join(edges, edges.c.id == edge_tables.c.edge_id)
             .order_by(edge_tables.c.edge_id, edge_tables.c.table_id))
        if jurisdiction is not None:
            q = q.where(edges.c.jurisdiction == jurisdiction)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    def control(self, edge_id: str, table_id: str, action: Action, reason: str, *, by: str,
                request_id: str | None = None) -> dict[str, Any]:
        """Queue a `table.control` command for the edge, with its operator record, in one transaction.
        `request_id` (the caller's idempotency key) makes a retried request the same command."""
        with self.engine.begin() as c:
            row = c.execute(select(edge_tables, edges.c.jurisdiction).join(edges, edges.c.id == edge_tables.c.edge_id)
                            .where(edge_tables.c.edge_id == edge_id, edge_tables.c.table_id == table_id)
                            ).mappings().first()
            if row is None:
                raise UnknownTable(f"{edge_id} has reported no table {table_id}")
            if action == "void" and row["round_n"] is None:
                raise NoRound(f"{edge_id}/{table_id} has no round in progress")
            cmd = S.TableControl(
                id=f"table.control:{edge_id}:{request_id or uuid.uuid4().hex}", ts=now_ms(), table_id=table_id,
                action=action, reason=reason, by=by,
                chain_id=row["round_chain"] if action == "void" else None,
                round_n=row["round_n"] if action == "void" else None)
            if outbox.enqueue(c, edge_id, cmd):
                operator_log.record(c, operator=by, jurisdiction=row["jurisdiction"], action=f"table.{action}",
                                    target=f"{edge_id}/{table_id}", reason=reason,
                                    detail={"command_id": cmd.id, "round_n": cmd.round_n})
        return {"command_id": cmd.id, "edge_id": edge_id, "table_id": table_id, "action": action,
                "round_n": cmd.round_n}
