"""Where clips live in-country, what they weigh against the budget, and which are past retention."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_agent.evidence import metrics as M
from edge_agent.evidence.config import VideoConfig

DAY_MS = 86_400_000


def clip_name(table_id: str, chain_id: str, n: int) -> str:
    """The file name of CONTRACT section 5 (`video/{table_id}.{chain_id}.{n}.mp4`)."""
    return f"{table_id}.{chain_id}.{n}.mp4"


@dataclass
class ClipRecord:
    """What the journal says of one clip (its `round.video` entry)."""

    table_id: str
    chain_id: str
    n: int
    sha256: str
    bytes: int
    end_ts: int


class VideoLibrary:
    def __init__(self, config: VideoConfig) -> None:
        self.config = config
        self.root = Path(config.dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.used = sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
        M.STORAGE_BUDGET.set(config.budget_bytes)
        self._publish()

    def path(self, table_id: str, chain_id: str, n: int) -> Path:
        return self.root / table_id / clip_name(table_id, chain_id, n)

    def table_dir(self, table_id: str) -> Path:
        d = self.root / table_id
        d.mkdir(parents=True, exist_ok=True)
        return d

    def room_for(self, extra: int) -> bool:
        return self.used + extra <= self.config.budget_bytes

    def add(self, n_bytes: int) -> None:
        self.used += n_bytes
        self._publish()

    def remove(self, path: Path) -> int:
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        self.used = max(0, self.used - size)
        self._publish()
        return size

    def expired(self, records: list[ClipRecord], now_ms: int) -> list[ClipRecord]:
        limit = now_ms - int(self.config.retention_days * DAY_MS)
        return [r for r in records if r.end_ts < limit and self.path(r.table_id, r.chain_id, r.n).exists()]

    def _publish(self) -> None:
        M.STORAGE_BYTES.set(self.used)
        M.STORAGE_RATIO.set(self.used / self.config.budget_bytes)
