"""What an integer on the wire may be: SQLite and the journal hold signed 64-bit integers.

Every boundary (HTTP, WebSocket, NATS commands, regulator queries, config) parses into these
before anything is journaled, so an integer the journal cannot hold is refused with a
machine-readable error instead of failing after the fact (or exporting as a float).
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Money amounts and limits, in minor units: sums and products of a handful of them (stakes times
# a 36:1 multiplier, a day's deposits) must stay far inside 64 bits.
MAX_MONEY = 10**15

Int64 = Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX)]
Seq = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX)]
Money = Annotated[int, Field(strict=True, gt=0, le=MAX_MONEY, description="positive integer of minor units")]


def is_int64(value: Any) -> bool:
    """A real int (not a bool) inside the signed 64-bit range."""
    return isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX


def first_unbounded(obj: Any) -> int | None:
    """The first integer anywhere in obj outside signed 64 bits, or None when all fit."""
    if isinstance(obj, bool):
        return None
    if isinstance(obj, int):
        return None if INT64_MIN <= obj <= INT64_MAX else obj
    if isinstance(obj, dict):
        items: Any = obj.values()
    elif isinstance(obj, (list, tuple)):
        items = obj
    else:
        return None
    for v in items:
        bad = first_unbounded(v)
        if bad is not None:
            return bad
    return None
