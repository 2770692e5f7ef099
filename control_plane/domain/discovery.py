"""Discovery ranking (pure): residency first, then health, then least loaded."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EdgeView:
    edge_id: str
    jurisdiction: str
    public_url: str
    healthy: bool
    last_heartbeat_ms: int | None
    viewers: int
    viewer_capacity: int

    @property
    def load(self) -> float:
        # An edge that reports no capacity is treated as full, so it only serves when alone.
        return self.viewers / self.viewer_capacity if self.viewer_capacity > 0 else 1.0


def candidates(edges: list[EdgeView], jurisdiction: str, now_ms: int, timeout_ms: int) -> tuple[bool, list[EdgeView]]:
    """(any edge in the jurisdiction, healthy edges of that jurisdiction least loaded first)."""
    local = [e for e in edges if e.jurisdiction == jurisdiction]
    alive = [e for e in local if e.healthy and e.last_heartbeat_ms is not None
             and now_ms - e.last_heartbeat_ms <= timeout_ms]
    return bool(local), sorted(alive, key=lambda e: (e.load, e.viewers, e.edge_id))
