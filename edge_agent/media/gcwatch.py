"""Full garbage collections stall a fan-out process's event loop, and so every viewer it serves
(≈ 0.5 µs per tracked object: ~200 ms with 500 aiortc peers). Log the long ones so late frames
can be matched to them."""
from __future__ import annotations

import gc
import time
from typing import Any

import structlog

log = structlog.get_logger(__name__)
LOG_AFTER_S = 0.05
_t0 = 0.0


def _callback(phase: str, info: dict[str, Any]) -> None:
    global _t0
    if phase == "start":
        _t0 = time.perf_counter()
    elif info.get("generation") == 2 and (d := time.perf_counter() - _t0) > LOG_AFTER_S:
        log.warning("media.gc_pause", ms=round(d * 1000, 1), collected=info.get("collected"))


def install(freeze: bool = False, thresholds: tuple[int, int, int] | None = None) -> None:
    """Watch full collections; `freeze` first moves everything alive now (modules, start-up
    state) out of the collector's reach, so later full collections walk only what came after;
    `thresholds` as gc.set_threshold."""
    if freeze:
        gc.collect()
        gc.freeze()
    if thresholds is not None:
        gc.set_threshold(*thresholds)
    if _callback not in gc.callbacks:
        gc.callbacks.append(_callback)
