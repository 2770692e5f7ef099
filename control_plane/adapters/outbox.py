"""Commands to edges: written in the same transaction as the decision, published afterwards."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from contract import sync as S
from control_plane.adapters.db.models import commands, edges
from control_plane.adapters.db.sql import insert_ignore
from control_plane.clock import now_ms


def enqueue(conn: Connection, edge_id: str, cmd: S.Command) -> bool:
    """Queue a command once: its id is derived from the business key, a second enqueue is a no-op."""
    return insert_ignore(conn, commands, {
        "id": cmd.id, "edge_id": edge_id, "type": cmd.type, "body": cmd.model_dump_json(),
        "created_ts": now_ms(), "published_ts": None})


@dataclass(frozen=True)
class Pending:
    id: str
    edge_id: str
    type: str
    body: str


def pending(engine: Engine, limit: int) -> list[Pending]:
    """Commands not yet published, oldest first."""
    with engine.connect() as c:
        return [Pending(r.id, r.edge_id, r.type, r.body) for r in c.execute(
            select(commands.c.id, commands.c.edge_id, commands.c.type, commands.c.body)
            .where(commands.c.published_ts.is_(None))
            .order_by(commands.c.created_ts, commands.c.id).limit(limit))]


def mark_published(engine: Engine, ids: list[str]) -> None:
    with engine.begin() as c:
        c.execute(update(commands).where(commands.c.id.in_(ids)).values(published_ts=now_ms()))


def listing(engine: Engine, edge_id: str | None = None, limit: int = 1000,
            jurisdiction: str | None = None) -> list[dict[str, Any]]:
    """Commands as queued (published or not), oldest first, bodies decoded; `jurisdiction`: only
    commands to that jurisdiction's edges."""
    q = select(commands).order_by(commands.c.created_ts, commands.c.id)
    if edge_id:
        q = q.where(commands.c.edge_id == edge_id)
    if jurisdiction is not None:
        q = q.where(commands.c.edge_id.in_(select(edges.c.id).where(edges.c.jurisdiction == jurisdiction)))
    with engine.connect() as c:
        return [{**dict(r), "body": json.loads(r["body"])} for r in c.execute(q.limit(limit)).mappings()]


class Outbox:
    """The commands table seen from outside a transaction (publisher, API)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def pending(self, limit: int) -> list[Pending]:
        return pending(self.engine, limit)

    def mark_published(self, ids: list[str]) -> None:
        mark_published(self.engine, ids)

    def listing(self, edge_id: str | None = None, limit: int = 1000,
                jurisdiction: str | None = None) -> list[dict[str, Any]]:
        return listing(self.engine, edge_id, limit, jurisdiction)


def deposit_credit_id(deposit_id: str) -> str:
    return f"deposit.credit:{deposit_id}"


def deposit_declined_id(deposit_id: str) -> str:
    return f"deposit.declined:{deposit_id}"


def payout_result_id(withdrawal_id: str) -> str:
    return f"payout.result:{withdrawal_id}"


def kyc_result_id(jurisdiction: str, player: str, version: int) -> str:
    return f"kyc.result:{jurisdiction}:{player}:{version}"


def exclude_id(origin_edge: str, seq: int, target_edge: str) -> str:
    return f"player.exclude:{origin_edge}:{seq}:{target_edge}"
