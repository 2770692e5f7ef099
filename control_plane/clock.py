"""Wall-clock time in milliseconds since the epoch (the unit of every *_ts column)."""
from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)
