"""Renders the dealer-table picture straight into YUV 4:2:0 planes (no RGB conversion per frame)."""
from __future__ import annotations

import math
from typing import Protocol

import av
import numpy as np

from edge_agent.media.timestamp import draw_capture_ts
from edge_agent.studio.font import draw_text

FELT = (80, 120, 100)  # Y, U, V of casino green


class Scene(Protocol):
    """What the dealer has put on the table (edge_agent.studio.dealer), painted into each picture."""

    def draw(self, buf: np.ndarray, index: int) -> None: ...


class TableRenderer:
    def __init__(self, table_id: str, width: int = 1280, height: int = 720, grain: bool = True,
                 game: str = "roulette") -> None:
        self.table_id, self.width, self.height, self.game = table_id, width, height, game
        self._base = np.empty((height * 3 // 2, width), np.uint8)
        self._base[:height] = FELT[0]
        self._base[height:height + height // 4] = FELT[1]
        self._base[height + height // 4:] = FELT[2]
        if game == "roulette":  # static wheel rim so the moving ball has something to circle
            yy, xx = np.ogrid[:height, :width]
            r = np.hypot(yy - height * 0.55, xx - width * 0.5)
            self._base[:height][(r > height * 0.28) & (r < height * 0.31)] = 200
        scale = max(2, height // 120)
        draw_text(self._base[:height], f"TABLE {table_id}", width // 20, height // 12, scale, 235)
        # Sensor grain, as a real camera has: without it the felt compresses to almost nothing and
        # the ladder's bitrates would be fiction. Pre-computed (8 variants) so it costs one copy.
        self._variants = [self._base]
        if grain:
            rng = np.random.default_rng(1)
            luma = self._base[:height].astype(np.int16)
            self._variants = []
            for _ in range(8):
                v = self._base.copy()
                v[:height] = np.clip(luma + rng.integers(-6, 7, luma.shape), 0, 255).astype(np.uint8)
                self._variants.append(v)

    def render(self, index: int, capture_ms: int, overlay: str | None, scene: Scene | None = None) -> av.VideoFrame:
        buf = self._variants[index % len(self._variants)].copy()
        y = buf[: self.height]
        h, w = self.height, self.width
        a = index * 2 * math.pi / 100
        if self.game == "roulette":  # moving element: a ball going round the wheel, a turn every 4 s
            cx, cy, br = int(w * 0.5 + h * 0.295 * math.cos(a)), int(h * 0.55 + h * 0.295 * math.sin(a)), h // 40
        else:  # a chip sliding along the rail, clear of the card spots
            cx, cy, br = int(w * (0.5 + 0.4 * math.sin(a))), int(h * 0.2), h // 40
        y[max(0, cy - br):cy + br, max(0, cx - br):cx + br] = 235
        scale = max(2, h // 90)
        if overlay:
            draw_text(y, overlay[:40], w // 20, h - h // 6, scale, 235)
        draw_text(y, f"{index:08d}", w - w // 3, h // 12, max(2, h // 120), 180)
        if scene is not None:
            scene.draw(buf, index)
        # Keep chroma neutral under the timestamp band so blocks stay pure black/white.
        draw_capture_ts(y, capture_ms)
        band = max(2, h // 24)
        # (yuv420p as one array: each U/V row of width w packs two chroma rows.)
        rows = band // 4 + 1
        buf[h:h + rows] = 128
        buf[h + h // 4:h + h // 4 + rows] = 128
        return av.VideoFrame.from_ndarray(buf, format="yuv420p")
