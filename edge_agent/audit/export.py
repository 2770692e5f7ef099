"""Regulator export bundles from a journal file (live or restored), read-only."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Iterator

import orjson

from contract.bundle import Manifest, write_bundle


def _identity(conn: sqlite3.Connection) -> tuple[str, str]:
    kv = dict(conn.execute("SELECT key, value FROM kv WHERE key IN ('edge.id', 'edge.jurisdiction')").fetchall())
    jur = kv.get("edge.jurisdiction")
    if jur is None:
        row = conn.execute("SELECT data FROM journal WHERE kind = 'player.registered' LIMIT 1").fetchone()
        jur = orjson.loads(row[0])["jurisdiction"] if row else "unknown"
    return kv.get("edge.id", "unknown"), jur


def export_bundle(db_path: str | Path, out_dir: str | Path, *, edge_id: str | None = None,
                  jurisdiction: str | None = None, from_seq: int | None = None, to_seq: int | None = None,
                  from_ts: int | None = None, to_ts: int | None = None) -> Manifest:
    conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    conn.execute("PRAGMA busy_timeout = 5000")
    try:
        known_id, known_jur = _identity(conn)
        # A time range becomes the seq range it covers: bundles are always contiguous.
        if from_ts is not None:
            row = conn.execute("SELECT MIN(seq) FROM journal WHERE ts >= ?", (from_ts,)).fetchone()
            from_seq = max(from_seq or 1, row[0] or 1)
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
