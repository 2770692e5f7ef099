"""The application layer's storage port: the journal and the in-country records beside it.

The application never writes SQL: it appends entries and names the records that must commit in
the same transaction (a chain's secret, an idempotent answer, a player's personal data, a KYC
document). `edge_agent.journal.store.JournalStore` is the SQLite adapter. The store assigns seq:
data that depends on it (a bet id, a receipt) is built by a callable given the assigned seq.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Entry = dict[str, Any]
Data = dict[str, Any]


@dataclass(frozen=True)
class ChainSecret:
    """A table's secret top seed: never leaves the edge (the journal holds the commitment)."""

    table_id: str
    chain_id: str
    seed_top: bytes
    length: int


@dataclass(frozen=True)
class IdempotentAnswer:
    """The answer to an HTTP Idempotency-Key, committed with the bet it answers."""

    player: str
    key: str
    body_sha: str
    status: int
    response: dict[str, Any]


@dataclass(frozen=True)
class PlayerRecord:
    """Personal data, in-country only; the journal names the player by pseudonym."""

    player_id: str
    pseudonym: str
    display_name: str | None
    email: str | None
    birth_date: str | None
    address: str | None
    created_ts: int


@dataclass(frozen=True)
class KycDocument:
    reference: str
    player: str
    document: bytes
    created_ts: int


Record = ChainSecret | IdempotentAnswer | PlayerRecord | KycDocument
Records = Sequence[Record] | Callable[[int], Sequence[Record]]  # a callable is given the entry's seq


class JournalPort(Protocol):
    seq: int  # last seq appended (not necessarily durable)
    head: str
    durable_seq: int
    fence_reason: str | None

    def append(self, kind: str, data: Data | Callable[[int], Data], records: Records = ()) -> Entry:
        """Assign seq/prev/hash, queue the entry (and its records) for the next group commit."""

    def when_durable(self, seq: int, callback: Callable[[BaseException | None], None]) -> None: ...

    async def durable(self, seq: int) -> None: ...

    def read(self, from_seq: int = 1, to_seq: int | None = None, limit: int | None = None) -> list[Entry]: ...

    def iter_all(self, batch: int = 10_000) -> Iterator[Entry]: ...

    def chain_secrets(self) -> list[ChainSecret]: ...

    def idempotent_answer(self, player: str, key: str) -> IdempotentAnswer | None: ...

    def round_span(self, table_id: str, chain_id: str, n: int) -> tuple[int, int] | None:
        """(first_seq, last_seq) of an ended round, from the rounds index."""

    def chain_seq(self, table_id: str, chain_id: str) -> int | None:
        """The seq of a chain's fairness.chain entry, from the chains index."""
