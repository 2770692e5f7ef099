"""Encoded frames for the video tests: the studio's picture through the real ladder encoder."""
from __future__ import annotations

import time
from collections.abc import Iterator

from edge_agent.media.config import MediaConfig, Rung, TableFeed
from edge_agent.media.transcode import Ladder
from edge_agent.studio.render import TableRenderer

RUNG = Rung(name="180p", width=320, height=180, bitrate_kbps=250)
FPS = 25


def media_config(*tables: str) -> MediaConfig:
    return MediaConfig(tables=[TableFeed(table_id=t, srt_port=9000 + i) for i, t in enumerate(tables)], ladder=[RUNG], fps=FPS,
                       keyframe_interval_s=0.4)


class Camera:
    """The studio picture encoded by the ladder, one rung; yields (pts90, key, rtp payloads)."""

    def __init__(self, table_id: str = "roulette-1") -> None:
        self.renderer = TableRenderer(table_id, RUNG.width, RUNG.height)
        self.ladder = Ladder([RUNG], FPS, int(FPS * 0.4))
        self.i = 0

    def frames(self, n: int) -> Iterator[tuple[int, bool, list[bytes]]]:
        for _ in range(n):
            f = self.renderer.render(self.i, int(time.time() * 1000), None)
            for _rung, key, payloads, _size in self.ladder.encode(f, self.i * 90000 // FPS):
                yield self.i * 90000 // FPS, key, payloads
            self.i += 1
