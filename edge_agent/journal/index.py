"""The `rounds` and `chains` index: where each chain and each ended round lies in the journal.

One writer for every way an entry reaches the journal: `JournalStore.append` (live), the import
of a Litestream gap (`audit/litestream.reconcile_gap`) and the import of the cloud's copy
(`sync/reconcile`). Each hands its entries, in seq order, to `RoundIndex.rows`, and commits the
rows it gets back in the same transaction as those entries, so the index never lags the journal.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contract import journal as J

SideOp = tuple[str, tuple[Any, ...]]  # SQL + params, committed in the same transaction
Query = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]

_ROUND_ENDS = frozenset({J.ROUND_SETTLED, J.ROUND_VOIDED})


class RoundIndex:
    def __init__(self, query: Query) -> None:
        # `query` reads what is already committed: rounds opened before this writer saw them.
        self._query = query
        self._opened: dict[tuple[str, str, int], tuple[int, str]] = {}

    def rows(self, seq: int, kind: str, data: dict[str, Any]) -> list[SideOp]:
        if kind == J.FAIRNESS_CHAIN:
            return [("INSERT OR REPLACE INTO chains VALUES (?,?,?)", (data["table_id"], data["chain_id"], seq))]
        if kind == J.ROUND_OPENED:
            self._opened[(data["table_id"], data["chain_id"], data["n"])] = (seq, data.get("game", ""))
            return []
        if kind not in _ROUND_ENDS:
            return []
        key = (data["table_id"], data["chain_id"], data["n"])
        first_seq, game = self._opened.pop(key, None) or self._committed_opening(key, seq)
        settled = kind == J.ROUND_SETTLED
        return [("INSERT OR REPLACE INTO rounds VALUES (?,?,?,?,?,?,?,?)",
                 (*key, data.get("game") or game, first_seq, seq, "settled" if settled else "voided",
                  None if settled else data.get("reason")))]

    def _committed_opening(self, key: tuple[str, str, int], before: int) -> tuple[int, str]:
        # Scans back from the end: the opening is normally a few entries before its end.
        rows = self._query(
            "SELECT seq, json_extract(data, '$.game') FROM journal WHERE seq < ? AND kind = ? "
            "AND json_extract(data, '$.table_id') = ? AND json_extract(data, '$.chain_id') = ? "
            "AND json_extract(data, '$.n') = ? ORDER BY seq DESC LIMIT 1", (before, J.ROUND_OPENED, *key))
        return (rows[0][0], rows[0][1] or "") if rows else (before, "")
