"""A write fence on the journal: while set, nothing can be appended (the edge must not fork).

Set by the sync service when the cloud holds entries this journal does not (a restore from a
replica that is behind), or holds a different entry at a seq this journal has (a fork). Every
append then raises `DomainError("edge_out_of_sync", 503)`: bets, deposits and round changes are
refused before anything changes; state and journal stay as they were.

Stop-gap: it wraps `store.append` on the instance because `edge_agent/casino.py` and
`edge_agent/journal/` belong to other work; the proper home is a `JournalStore.fence(reason)`
checked at the top of `append` (see the sync report).
"""
from __future__ import annotations

from typing import Any

from edge_agent.domain.errors import DomainError

OUT_OF_SYNC = "edge_out_of_sync"


class JournalFenced(DomainError):
    def __init__(self, reason: str) -> None:
        super().__init__(OUT_OF_SYNC, f"the edge is out of sync with the cloud and takes no writes: {reason}", 503)


def fence(store: Any, reason: str) -> None:
    """Refuse every further append on `store` (idempotent; the latest reason wins)."""
    store._sync_fence_reason = reason
    if "append" in vars(store):
        return

    def fenced_append(*args: Any, **kwargs: Any) -> Any:
        raise JournalFenced(store._sync_fence_reason)

    store.append = fenced_append


def unfence(store: Any) -> None:
    if "append" in vars(store):
        del store.append
    store.__dict__.pop("_sync_fence_reason", None)


def fenced(store: Any) -> str | None:
    return vars(store).get("_sync_fence_reason") if "append" in vars(store) else None
