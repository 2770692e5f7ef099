"""A tiny durable key -> JSON store for the simulated external systems (bank, chain, PSP).

They are someone else's books: they live in their own file so that they survive a crash of
the control plane, which is exactly what the idempotency tests need.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any


class SimStore:
    def __init__(self, path: Path | None) -> None:
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_if_absent(self, key: str, value: dict[str, Any]) -> dict[str, Any]:
        """Store value unless the key exists; return what is stored (the idempotency primitive)."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO kv VALUES (?, ?)", (key, json.dumps(value)))
            row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return json.loads(row[0])

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, json.dumps(value)))

    def items(self, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute("SELECT k, v FROM kv WHERE k LIKE ? ORDER BY k", (prefix + "%",)).fetchall()
        return [(k, json.loads(v)) for k, v in rows]

    def close(self) -> None:
        self._db.close()
