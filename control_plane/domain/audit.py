"""Audit verdicts over what the cloud holds of an edge's journal (pure)."""
from __future__ import annotations

CHAIN_FLAGS = frozenset({"fork", "chain_break", "hash_mismatch"})
# Flags that make an edge's audit "not ok" (a gap is judged from the held seqs, not from its flag).
SERIOUS_FLAGS = CHAIN_FLAGS | {"checkpoint_inconsistent", "checkpoint_root_mismatch", "checkpoint_fork",
                               "checkpoint_bad_signature"}


def open_gaps(held_seqs: list[int], head: int) -> list[list[int]]:
    """Missing [from, to] ranges above the contiguous head, given the seqs held beyond it."""
    gaps, expect = [], head + 1
    for s in held_seqs:
        if s > expect:
            gaps.append([expect, s - 1])
        expect = s + 1
    return gaps
