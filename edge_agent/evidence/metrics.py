"""Prometheus metrics of round video evidence and of the vision check (docs/OPERATIONS.md section 3)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

STORAGE_BYTES = Gauge("casino_video_storage_bytes", "Bytes of round clips kept in-country")
STORAGE_BUDGET = Gauge("casino_video_storage_budget_bytes", "Disk budget for round clips")
STORAGE_RATIO = Gauge("casino_video_storage_ratio", "Round clips' share of their disk budget (alarm from 0.85)")
RECORDING = Gauge("casino_video_recording", "1 while the table's rounds are being recorded", ["table"])
CLIPS = Counter("casino_video_clips_total", "Round clips journaled", ["table"])
FAILURES = Counter("casino_video_failures_total", "Rounds left without a clip, by reason", ["table", "reason"])
DELETED = Counter("casino_video_deleted_total", "Clips deleted at the end of their retention period")
VISION = Counter("casino_vision_reveals_total", "Reveals checked by the camera, by result", ["table", "result"])
VISION_LATENCY = Histogram("casino_vision_latency_seconds", "Reveal frame capture to its reading by the edge",
                           ["table"], buckets=(0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0))
