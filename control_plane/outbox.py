"""Commands to edges: written in the same transaction as the decision, published afterwards."""
from __future__ import annotations

from sqlalchemy import Connection

from contract import sync as S
from control_plane.db.models import commands
from control_plane.util import insert_ignore, now_ms


def enqueue(conn: Connection, edge_id: str, cmd: S.Command) -> bool:
    """Queue a command once: its id is derived from the business key, a second enqueue is a no-op."""
    return insert_ignore(conn, commands, {
        "id": cmd.id, "edge_id": edge_id, "type": cmd.type, "body": cmd.model_dump_json(),
        "created_ts": now_ms(), "published_ts": None})


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
