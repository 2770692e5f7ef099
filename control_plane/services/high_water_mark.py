"""What the cloud holds of an edge's journal, for the edge to check itself against after a restore
(`casino.hwm.<edge>`, see edge_agent/sync/cloud.py)."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, select

from contract import journal as J
from contract import sync as S
from control_plane.adapters.db.models import edge_sync, entries


class HighWaterMarks:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def mark(self, edge_id: str, from_seq: int = 0, limit: int = 0) -> dict[str, Any]:
        """`HighWaterMark` (last contiguous seq + hash held); with `from_seq` > 0 also `"entries"`, the
        SyncedEntry objects held from `from_seq` on (up to `limit`, never beyond the mark)."""
        with self.engine.connect() as c:
            row = c.execute(select(edge_sync.c.head_seq, edge_sync.c.head_hash)
                            .where(edge_sync.c.edge_id == edge_id)).first()
            head = row.head_seq if row else 0
            out: dict[str, Any] = S.HighWaterMark(
                edge_id=edge_id, seq=head, hash=row.head_hash if row else J.GENESIS_PREV).model_dump()
            if from_seq > 0:
                bodies = c.execute(select(entries.c.body).where(
                    entries.c.edge_id == edge_id, entries.c.seq >= from_seq,
                    entries.c.seq < from_seq + limit, entries.c.seq <= head)
                    .order_by(entries.c.seq)).scalars().all()
                out["entries"] = [json.loads(b) for b in bodies]
        return out
