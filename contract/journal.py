"""Journal entries: the wire form of CONTRACT section 2 and its hash chain.

An entry is a plain dict {"seq", "ts", "kind", "data", "prev", "hash"}; plain dicts keep the
bet path cheap and are exactly what goes on the wire.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from contract.canonical import canonical_json, canonical_json_fast

GENESIS_PREV = "0" * 64
ENTRY_KEYS = ("seq", "ts", "kind", "data", "prev", "hash")

# Kinds read by the fairness and payout checks (CONTRACT section 2).
FAIRNESS_CHAIN = "fairness.chain"
ROUND_OPENED = "round.opened"
ROUND_CLOSED = "round.closed"
BET_PLACED = "bet.placed"
ROUND_SETTLED = "round.settled"
ROUND_VOIDED = "round.voided"


def entry_hash(seq: int, ts: int, kind: str, data: dict[str, Any], prev: str) -> str:
    """The reference: SHA-256 of the canonical JSON of {seq, ts, kind, data, prev} (CONTRACT section 2)."""
    body = {"seq": seq, "ts": ts, "kind": kind, "data": data, "prev": prev}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def entry_hash_of_data_json(seq: int, ts: int, kind: str, data_json: str, prev: str) -> str:
    """The same hash, from the data's canonical JSON text already made (the edge's append path:
    the data is serialised once, for the row and for the hash). Keys in sorted order."""
    body = f'{{"data":{data_json},"kind":{canonical_json_fast(kind).decode()},"prev":"{prev}","seq":{seq},"ts":{ts}}}'
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def hash_matches(seq: int, ts: int, kind: str, data: dict[str, Any], prev: str, expected: str) -> bool:
    """Does an entry hash to `expected`? orjson first (the same bytes on everything a journal
    holds, ten times faster), the reference encoder before saying no."""
    body = {"seq": seq, "ts": ts, "kind": kind, "data": data, "prev": prev}
    if hashlib.sha256(canonical_json_fast(body)).hexdigest() == expected:
        return True
    return entry_hash(seq, ts, kind, data, prev) == expected


def make_entry(seq: int, ts: int, kind: str, data: dict[str, Any], prev: str) -> dict[str, Any]:
    return {
        "seq": seq,
        "ts": ts,
        "kind": kind,
        "data": data,
        "prev": prev,
        "hash": entry_hash(seq, ts, kind, data, prev),
    }


def entry_line(entry: dict[str, Any]) -> str:
    """One line of journal.jsonl: the entry in canonical JSON (hash included)."""
    return canonical_json(entry).decode("utf-8")


@dataclass(frozen=True)
class ChainBreak:
    """The first entry at which a chain stops holding, and why."""

    seq: int | None
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line} (seq {self.seq}): {self.reason}"


def check_chain(
    entries: Iterable[dict[str, Any]], *, first_seq: int = 1, anchor: str = GENESIS_PREV
) -> ChainBreak | None:
    """Check contiguity and the hash chain; return the first break, or None when all holds.

    `anchor` is the `prev` the first entry must carry (sixty-four 0 for seq 1).
    """
    expected_seq, expected_prev = first_seq, anchor
    for line, e in enumerate(entries, start=1):
        seq = e.get("seq") if isinstance(e, dict) else None
        if not isinstance(e, dict) or set(e) != set(ENTRY_KEYS):
            return ChainBreak(seq, line, "entry does not have exactly the keys seq, ts, kind, data, prev, hash")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq != expected_seq:
            return ChainBreak(seq, line, f"expected seq {expected_seq}")
        if e["prev"] != expected_prev:
            return ChainBreak(seq, line, "prev does not match the hash of the previous entry")
        try:
            h = entry_hash(seq, e["ts"], e["kind"], e["data"], e["prev"])
        except (TypeError, ValueError) as exc:
            return ChainBreak(seq, line, f"entry cannot be hashed: {exc}")
        if h != e["hash"]:
            return ChainBreak(seq, line, "hash does not match the entry's content")
        expected_seq, expected_prev = seq + 1, e["hash"]
    return None


RECORD_SEPARATOR = "\n"


def split_records(text: str) -> list[str]:
    r"""The records of a journal.jsonl: split on "\n" (0x0A) alone (CONTRACT section 5).

    Never `str.splitlines()`: canonical JSON escapes control characters but leaves U+0085,
    U+2028 and U+2029 as they are, and splitlines would cut an entry holding one in two.
    Only the empty tail after the last "\n" is dropped.
    """
    records = text.split(RECORD_SEPARATOR)
    if records and records[-1] == "":
        records.pop()
    return records


def parse_jsonl(text: str) -> Iterator[dict[str, Any]]:
    for raw in split_records(text):
        if raw.strip():
            yield json.loads(raw)
