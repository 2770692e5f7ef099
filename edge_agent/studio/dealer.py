"""The simulated dealer: puts the cards (or the roulette result) the edge tells it on the table,
one at a time, sliding in from the shoe, then resting with the small movements of a real table;
the studio's lights drift and flicker. A fault mode deals a wrong card or number on purpose.

The edge sends what to deal over the dealer link (one JSON datagram per instruction, see
`edge_agent.vision.dealer_link`): {"op": "deal", "n", "game", "reveal": {slot: code|number},
"order": [slots]} and {"op": "clear"} when a new round starts.
"""
from __future__ import annotations

import json
import math
import socket
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from contract.fairness import RED
from edge_agent.studio import cards as K

SLIDE_FRAMES = 6


@dataclass
class _Item:
    slot: str
    value: str | int
    start: int  # frame index it leaves the shoe


def wrong(value: str | int) -> str | int:
    """A plausible dealing error: the next rank (same suit), or the next pocket."""
    if isinstance(value, int):
        return (value + 1) % 37
    return K.RANKS[(K.RANKS.index(value[0]) + 1) % 13] + value[1]


class Dealer:
    def __init__(self, game: str, width: int, height: int, fps: int = 25, *, deal_interval_s: float = 0.6,
                 fault_every: int = 0, seed: int = 7) -> None:
        self.game, self.width, self.height, self.fps = game, width, height, fps
        self.slots = K.slots(game)
        self.interval = max(1, int(deal_interval_s * fps))
        self.fault_every = fault_every  # every k-th reveal has one wrong card/number (0 = never)
        self._reveals = 0
        self._items: list[_Item] = []
        self._lock = threading.Lock()
        self._pending: list[dict] = []
        self.cw, self.ch = K.card_size(height)
        self.pw, self.ph = K.plate_size(height)
        rng = np.random.default_rng(seed)
        self._noise = rng.integers(-7, 8, (4, self.ch + 8, self.cw + 8 + self.pw)).astype(np.int16)
        self._faces: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.faults: list[tuple[str, str | int, str | int]] = []  # (slot, dealt, instructed)

    # -- instructions (any thread) ---------------------------------------------------------------
    def instruct(self, msg: dict) -> None:
        with self._lock:
            self._pending.append(msg)

    def _apply(self, index: int) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for msg in pending:
            if msg.get("op") == "clear":
                self._items.clear()
            elif msg.get("op") == "deal":
                reveal = dict(msg["reveal"])
                self._reveals += 1
                order = list(msg.get("order") or reveal)
                if self.fault_every and self._reveals % self.fault_every == 0 and order:
                    slot = order[-1]
                    self.faults.append((slot, wrong(reveal[slot]), reveal[slot]))
                    reveal[slot] = wrong(reveal[slot])
                t = index
                for i, slot in enumerate(order):
                    if slot in self.slots:
                        self._items = [it for it in self._items if it.slot != slot]
                        self._items.append(_Item(slot, reveal[slot], t + i * self.interval))

    # -- drawing (the studio's render thread) ------------------------------------------------
    def draw(self, buf: np.ndarray, index: int) -> None:
        """Paint the table's cards into a yuv420p buffer (H*3/2 x W) in place, then the light."""
        self._apply(index)
        h, w = self.height, self.width
        y = buf[:h]
        for it in self._items:
            if index < it.start:
                continue
            s = self.slots[it.slot]
            tx, ty = s.cx * w, s.cy * h
            k = min(1.0, (index - it.start) / SLIDE_FRAMES)
            if k < 1.0:  # sliding in from the shoe (top right), decelerating
                e = 1 - (1 - k) ** 2
                tx, ty = 0.95 * w + (tx - 0.95 * w) * e, 0.05 * h + (ty - 0.05 * h) * e
            else:  # resting, with the small sway of a hand-held layout and camera
                tx += 1.2 * math.sin(index * 0.31 + s.cx * 17)
                ty += 1.0 * math.cos(index * 0.23 + s.cy * 11)
            if isinstance(it.value, int):
                self._draw_plate(buf, int(tx), int(ty), it.value, index)
            else:
                self._draw_card(buf, int(tx), int(ty), it.value, index)
        # Lighting: a slow drift of the studio lights and an occasional flicker.
        gain = 1.0 + 0.07 * math.sin(index / 23.0) + (-0.08 if index % 53 in (0, 1) else 0.0)
        cv2.convertScaleAbs(y, dst=y, alpha=gain)

    def _face(self, code: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f = self._faces.get(code)
        if f is None:
            f = self._faces[code] = K.face(code, self.cw, self.ch)
        return f

    def _region(self, cx: int, cy: int, fw: int, fh: int) -> tuple[int, int] | None:
        x0, y0 = cx - fw // 2, cy - fh // 2
        if x0 < 0 or y0 < 0 or x0 + fw > self.width or y0 + fh > self.height:
            return None
        return x0 & ~1, y0 & ~1  # even: chroma planes are subsampled 2x2

    def _paint(self, buf: np.ndarray, x0: int, y0: int, yp: np.ndarray, up: np.ndarray, vp: np.ndarray,
               index: int) -> None:
        h, w = self.height, self.width
        fh, fw = yp.shape
        noise = self._noise[index % 4, :fh, :fw]
        buf[y0:y0 + fh, x0:x0 + fw] = np.clip(yp.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        # yuv420p as one array: U rows follow Y, each array row holding two chroma rows of w/2.
        u = buf[h:h + h // 4].reshape(h // 2, w // 2)
        v = buf[h + h // 4:].reshape(h // 2, w // 2)
        cy0, cx0, ch, cw = y0 // 2, x0 // 2, fh // 2, fw // 2
        u[cy0:cy0 + ch, cx0:cx0 + cw] = up[: ch * 2:2, : cw * 2:2]
        v[cy0:cy0 + ch, cx0:cx0 + cw] = vp[: ch * 2:2, : cw * 2:2]

    def _draw_card(self, buf: np.ndarray, cx: int, cy: int, code: str, index: int) -> None:
        at = self._region(cx, cy, self.cw, self.ch)
        if at is not None:
            self._paint(buf, *at, *self._face(code), index)

    def _draw_plate(self, buf: np.ndarray, cx: int, cy: int, number: int, index: int) -> None:
        at = self._region(cx, cy, self.pw, self.ph)
        if at is None:
            return
        digits = K.plate_mask(number, self.pw, self.ph)
        color = (80, 90, 240) if number in RED else (16, 128, 128) if number else (90, 80, 60)
        yp = np.full((self.ph, self.pw), color[0], np.uint8)
        up = np.full((self.ph, self.pw), color[1], np.uint8)
        vp = np.full((self.ph, self.pw), color[2], np.uint8)
        yp[digits], up[digits], vp[digits] = 235, 128, 128
        self._paint(buf, *at, yp, up, vp, index)


def listen(dealer: Dealer, port: int, stop: threading.Event) -> threading.Thread:
    """Take the edge's instructions from UDP `port` on a daemon thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(0.2)

    def loop() -> None:
        while not stop.is_set():
            try:
                data, _ = sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                dealer.instruct(json.loads(data))
            except ValueError:
                continue
        sock.close()

    t = threading.Thread(target=loop, daemon=True, name="dealer-link")
    t.start()
    return t
