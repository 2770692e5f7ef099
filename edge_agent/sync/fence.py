"""The sync service's view of the journal's write fence (`JournalStore.fence`).

Set when the cloud holds entries this journal does not (a restore from a replica that is
behind), or holds a different entry at a seq this journal has (a fork). Every append then raises
`JournalFenced` (`edge_out_of_sync`, 503): bets, deposits and round changes are refused before
anything changes; state and journal stay as they were.
"""
from __future__ import annotations

from edge_agent.journal.store import JournalFenced, JournalStore

OUT_OF_SYNC = "edge_out_of_sync"

__all__ = ["OUT_OF_SYNC", "JournalFenced", "fence", "unfence", "fenced"]


def fence(store: JournalStore, reason: str) -> None:
    store.fence(reason)


def unfence(store: JournalStore) -> None:
    store.unfence()


def fenced(store: JournalStore) -> str | None:
    return store.fence_reason
