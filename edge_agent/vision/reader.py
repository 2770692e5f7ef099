"""Reads cards and the roulette number from one decoded picture (OpenCV).

For each slot the game's layout names, the card is found as the bright blob of card size near
that spot (Otsu threshold, contours), cut out, its ink separated from the card stock relative
to the card's own brightness (so the studio's lighting does not matter) and compared by
normalised correlation with templates of all 52 faces rendered from the repository's own card
drawing (edge_agent/studio/cards.py); red or black ink decides between the two suit colours.
The roulette number is read the same way from the result plate (37 templates). Nothing is
downloaded and nothing is trained: the templates are the drawing the studio deals from.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_agent.studio import cards as K

CODES = [r + s for s in K.SUITS for r in K.RANKS]
MIN_SCORE = 0.55  # below: unreadable (a hand over the card, glare, a card not yet at its spot)


def _unit(a: np.ndarray) -> np.ndarray:
    v = a.astype(np.float32).ravel()
    v -= v.mean()
    n = float(np.linalg.norm(v))
    return v / n if n else v


@dataclass(frozen=True)
class Reading:
    value: str | int | None
    score: float


class TableReader:
    def __init__(self, game: str, width: int, height: int) -> None:
        self.game, self.width, self.height = game, width, height
        self.slots = K.slots(game)
        self.cw, self.ch = K.card_size(height)
        self.pw, self.ph = K.plate_size(height)
        self._card_t = np.stack([_unit(K.ink_mask(c, self.cw, self.ch)) for c in CODES])
        self._red = np.array([c[1] in K.RED_SUITS for c in CODES])
        self._numbers: list[np.ndarray] = []
        for number in range(37):
            m = K.plate_mask(number, self.pw, self.ph).astype(np.uint8)
            ys, xs = np.nonzero(m)
            self._numbers.append(m[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32))

    def read(self, yuv: np.ndarray, slots: list[str]) -> dict[str, Reading]:
        """Readings of the named slots from a yuv420p picture (H*3/2 x W array)."""
        h, w = self.height, self.width
        y = yuv[:h]
        v = yuv[h + h // 4:].reshape(h // 2, w // 2)
        out = {}
        for name in slots:
            s = self.slots[name]
            cx, cy = int(s.cx * w), int(s.cy * h)
            out[name] = self._read_plate(y, cx, cy) if name == "number" else self._read_card(y, v, cx, cy)
        return out

    # -- cards -------------------------------------------------------------------------------------
    def _read_card(self, y: np.ndarray, v: np.ndarray, cx: int, cy: int) -> Reading:
        mx, my = int(self.cw * 0.8) + 4, int(self.ch * 0.8) + 4
        x0, y0 = max(0, cx - mx), max(0, cy - my)
        win = y[y0:cy + my, x0:cx + mx]
        if win.size == 0:
            return Reading(None, 0.0)
        _, bw = cv2.threshold(win, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        contours, _ = cv2.findContours(bw, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        want = self.cw * self.ch
        best = None
        for c in contours:
            bx, by, bwid, bh = cv2.boundingRect(c)
            ratio = bwid * bh / want
            fits = 0.75 <= ratio <= 1.3 and 0.55 <= bwid / bh <= 0.9
            if fits and (best is None or abs(ratio - 1) < abs(best[4] - 1)):
                best = (bx, by, bwid, bh, ratio)
        if best is None:
            return Reading(None, 0.0)
        bx, by, bwid, bh, _ = best
        crop = win[by:by + bh, bx:bx + bwid].astype(np.float32)
        paper = float(np.percentile(crop, 90))
        if paper < 60:
            return Reading(None, 0.0)
        ink = (crop < 0.6 * paper).astype(np.float32)
        ink = cv2.resize(ink, (self.cw, self.ch), interpolation=cv2.INTER_AREA)
        scores = self._card_t @ _unit(ink)
        # Ink colour: the V (red-difference) chroma under the ink, against that of the card stock.
        gx0, gy0 = (x0 + bx) // 2, (y0 + by) // 2
        vc = v[gy0:gy0 + bh // 2, gx0:gx0 + bwid // 2].astype(np.float32)
        inkc = cv2.resize(ink, (vc.shape[1], vc.shape[0]), interpolation=cv2.INTER_AREA) > 0.5
        red = bool(inkc.any()) and float(vc[inkc].mean()) - float(np.median(vc)) > 18
        scores = np.where(self._red == red, scores, -1.0)
        i = int(np.argmax(scores))
        score = float(scores[i])
        return Reading(CODES[i] if score >= MIN_SCORE else None, score)

    # -- the roulette plate --------------------------------------------------------------------
    def _read_plate(self, y: np.ndarray, cx: int, cy: int) -> Reading:
        mx, my = self.pw // 2 + 4, self.ph // 2 + 4
        win = y[max(0, cy - my):cy + my, max(0, cx - mx):cx + mx]
        if win.size == 0:
            return Reading(None, 0.0)
        hi, mid = float(np.percentile(win, 99.5)), float(np.median(win))
        if hi - mid < 60:
            return Reading(None, 0.0)  # no bright digits: no plate on the table
        bright = (win > (hi + mid) / 2).astype(np.uint8)
        # Strokes of a glyph touch only diagonally once scaled: grow them before grouping.
        n, _, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(bright, np.ones((3, 3), np.uint8)))
        tall = [stats[i] for i in range(1, n) if stats[i, cv2.CC_STAT_HEIGHT] >= self.ph * 0.5]
        if not tall:
            return Reading(None, 0.0)
        x0 = min(s[cv2.CC_STAT_LEFT] for s in tall)
        x1 = max(s[cv2.CC_STAT_LEFT] + s[cv2.CC_STAT_WIDTH] for s in tall)
        y0 = min(s[cv2.CC_STAT_TOP] for s in tall)
        y1 = max(s[cv2.CC_STAT_TOP] + s[cv2.CC_STAT_HEIGHT] for s in tall)
        x0, y0, x1, y1 = x0 + 1, y0 + 1, x1 - 1, y1 - 1  # undo the growth
        digits = bright[y0:y1, x0:x1].astype(np.float32)
        if digits.size == 0:
            return Reading(None, 0.0)
        seen = _unit(digits)
        scores = np.array([float(_unit(cv2.resize(t, (digits.shape[1], digits.shape[0]),
                                                   interpolation=cv2.INTER_AREA)) @ seen)
                           for t in self._numbers])
        # Width tells one digit from two before the shapes do.
        wide = digits.shape[1] > digits.shape[0] * 1.05
        scores = np.where(np.array([(k >= 10) == wide for k in range(37)]), scores, -1.0)
        k = int(np.argmax(scores))
        return Reading(k if scores[k] >= MIN_SCORE else None, float(scores[k]))
