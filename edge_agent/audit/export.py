"""Regulator export bundles (CONTRACT section 5) from a journal file, live or restored, read-only.

Identity: `edge_id`/`jurisdiction` given by the caller, else kv `edge.id`/`edge.jurisdiction`
(written by the edge at start), else the jurisdiction the journal's entries state, else
"unknown". Only committed entries are read, through a read-only connection: safe on a live
journal next to the writer and on a Litestream-restored copy.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from contract.bundle import Manifest, write_bundle


def _identity(conn: sqlite3.Connection) -> tuple[str, str]:
    kv = dict(conn.execute("SELECT key, value FROM kv WHERE key IN ('edge.id', 'edge.jurisdiction')").fetchall())
    jur = kv.get("edge.jurisdiction")
    if jur is None:
        # No identity in kv (an edge that predates it): the jurisdiction its journal states.
        row = conn.execute("SELECT data FROM journal WHERE kind = 'player.registered' ORDER BY seq LIMIT 1").fetchone()
        jur = orjson.loads(row[0]).get("jurisdiction", "unknown") if row else "unknown"
    edge_id = kv.get("edge.id")
    if edge_id is None:
        # bet ids are f"{edge_id}-{seq}" of their own entry
        row = conn.execute("SELECT seq, data FROM journal WHERE kind = 'bet.placed' ORDER BY seq LIMIT 1").fetchone()
        bet_id = orjson.loads(row[1]).get("bet_id", "") if row else ""
        edge_id = bet_id[: -len(f"-{row[0]}")] if row and bet_id.endswith(f"-{row[0]}") else "unknown"
    return edge_id, jur


def export_bundle(db_path: str | Path, out_dir: str | Path, *, edge_id: str | None = None,
                  jurisdiction: str | None = None, from_seq: int | None = None, to_seq: int | None = None,
                  from_ts: int | None = None, to_ts: int | None = None) -> Manifest:
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    conn.execute("PRAGMA busy_timeout = 5000")
    try:
        known_id, known_jur = _identity(conn)
        # A time range becomes the seq range it covers: bundles are always contiguous.
        # (ts never decreases along the journal, so the entries of a time window are contiguous.)
        if from_ts is not None:
            row = conn.execute("SELECT MIN(seq) FROM journal WHERE ts >= ?", (from_ts,)).fetchone()
            from_seq = max(from_seq or 1, row[0] if row[0] is not None else 1 << 62)
        if to_ts is not None:
            row = conn.execute("SELECT MAX(seq) FROM journal WHERE ts <= ?", (to_ts,)).fetchone()
            to_seq = min(to_seq if to_seq is not None else 1 << 62, row[0] or 0)

        def entries() -> Iterator[dict[str, Any]]:
            cur = conn.execute(
                "SELECT seq, ts, kind, data, prev, hash FROM journal WHERE seq >= ? AND seq <= ? ORDER BY seq",
                (from_seq or 1, to_seq if to_seq is not None else 1 << 62))
            for seq, ts, kind, data, prev, h in cur:
                yield {"seq": seq, "ts": ts, "kind": kind, "data": orjson.loads(data), "prev": prev, "hash": h}

        return write_bundle(Path(out_dir), entries(), edge_id=edge_id or known_id,
                            jurisdiction=jurisdiction or known_jur)
    finally:
        conn.close()
