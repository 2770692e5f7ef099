"""What the dealer puts on the table, drawn as a camera sees it: playing cards (rank and suit
faces) at their positions and the roulette result plate, in canonical card coordinates.

One drawing serves the studio simulator (which paints it into the picture, moved, lit and
noisy) and the edge's vision check (which renders its templates from it: no model to download).
A card face is `CARD_W x CARD_H` canonical units; `face()` renders it at any pixel size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_agent.studio.font import _BITMAPS

RANKS = "A23456789TJQK"
SUITS = "SHDC"
RED_SUITS = frozenset("HD")
CARD_W, CARD_H = 40, 56  # canonical units (a 63 x 88 mm card)
# YUV of what is printed: white card stock, black and red ink.
PAPER = (235, 128, 128)
INK = {"black": (24, 128, 128), "red": (82, 90, 240)}


def _suit_mask(suit: str, size: int) -> np.ndarray:
    """Suit symbol as a boolean mask of size x size (drawn from geometry, scale-free)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    u, v = (xx + 0.5) / size * 2 - 1, (yy + 0.5) / size * 2 - 1  # -1..1, v down
    if suit == "D":
        return np.abs(u) * 1.25 + np.abs(v) <= 1.0
    if suit == "H":
        lobes = ((u + 0.45) ** 2 + (v + 0.35) ** 2 <= 0.22) | ((u - 0.45) ** 2 + (v + 0.35) ** 2 <= 0.22)
        tip = (v >= -0.35) & (np.abs(u) <= (0.95 - v) * 0.72) & (v <= 0.95)
        return lobes | tip
    if suit == "S":
        lobes = ((u + 0.42) ** 2 + (v - 0.15) ** 2 <= 0.2) | ((u - 0.42) ** 2 + (v - 0.15) ** 2 <= 0.2)
        tip = (v <= 0.15) & (np.abs(u) <= (v + 0.95) * 0.72) & (v >= -0.95)
        stem = (np.abs(u) <= 0.12 + (v - 0.3) * 0.35) & (v >= 0.3) & (v <= 0.95)
        return lobes | tip | stem
    if suit == "C":
        r2 = 0.13
        lobes = ((u ** 2 + (v + 0.45) ** 2) <= r2) | (((u + 0.45) ** 2 + (v - 0.1) ** 2) <= r2) | \
                (((u - 0.45) ** 2 + (v - 0.1) ** 2) <= r2) | ((u ** 2 + v ** 2) <= 0.05)
        stem = (np.abs(u) <= 0.1 + (v - 0.2) * 0.35) & (v >= 0.2) & (v <= 0.95)
        return lobes | stem
    raise ValueError(f"unknown suit {suit!r}")


def _text_mask(text: str) -> np.ndarray:
    """Font glyphs side by side (1 column apart), as one boolean mask of 7 rows."""
    cols: list[np.ndarray] = []
    for i, ch in enumerate(text):
        if i:
            cols.append(np.zeros((7, 1), bool))
        cols.append(_BITMAPS[ch])
    return np.hstack(cols)


def rank_label(rank: str) -> str:
    return "10" if rank == "T" else rank


def _paste(canvas: np.ndarray, mask: np.ndarray, x: int, y: int, w: int, h: int) -> None:
    """Nearest-neighbour scale `mask` into canvas[y:y+h, x:x+w] (OR)."""
    ys = (np.arange(h) * mask.shape[0] // h)[:, None]
    xs = (np.arange(w) * mask.shape[1] // w)[None, :]
    canvas[y:y + h, x:x + w] |= mask[ys, xs]


def ink_mask(code: str, w: int, h: int) -> np.ndarray:
    """Where ink is on card `code` rendered at w x h pixels (rank and suit in the top-left corner,
    a large suit in the middle, the corner repeated upside down at the bottom right)."""
    rank, suit = code[0], code[1]
    sx, sy = w / CARD_W, h / CARD_H
    m = np.zeros((h, w), bool)
    label = _text_mask(rank_label(rank))
    lw = round(label.shape[1] * 2 * sx)
    _paste(m, label, int(3 * sx), int(3 * sy), max(1, lw), max(1, int(14 * sy)))
    _paste(m, _suit_mask(suit, 32), int(3 * sx), int(19 * sy), max(1, int(10 * sx)), max(1, int(10 * sy)))
    big = max(1, int(18 * sx))
    _paste(m, _suit_mask(suit, 64), (w - big) // 2 + int(2 * sx), int(26 * sy), big, big)
    corner = m[: int(30 * sy), : int(16 * sx)]
    m[h - corner.shape[0]:, w - corner.shape[1]:] |= corner[::-1, ::-1]
    return m


def face(code: str, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U, V planes (full resolution) of card `code` at w x h pixels."""
    ink = ink_mask(code, w, h)
    color = INK["red" if code[1] in RED_SUITS else "black"]
    planes = []
    for c in range(3):
        p = np.full((h, w), PAPER[c], np.uint8)
        p[ink] = color[c]
        planes.append(p)
    # A thin grey edge, as card stock shows against the felt.
    planes[0][[0, -1], :] = planes[0][:, [0, -1]] = 200
    return planes[0], planes[1], planes[2]


def plate_mask(number: int, w: int, h: int) -> np.ndarray:
    """The roulette result plate's digits at w x h pixels (centred, 70 % of the height)."""
    label = _text_mask(str(number))
    m = np.zeros((h, w), bool)
    gh = int(h * 0.7)
    gw = max(1, round(label.shape[1] * gh / 7))
    _paste(m, label, (w - gw) // 2, (h - gh) // 2, min(gw, w), gh)
    return m


@dataclass(frozen=True)
class Slot:
    """Where one card (or the roulette plate) lies, in fractions of the picture."""

    name: str
    cx: float
    cy: float


def card_size(frame_h: int) -> tuple[int, int]:
    """Pixel size of a card in a picture of height frame_h (a studio camera framing the layout)."""
    h = max(28, int(frame_h * 0.15))
    return h * CARD_W // CARD_H, h


def plate_size(frame_h: int) -> tuple[int, int]:
    h = max(20, int(frame_h * 0.14))
    return int(h * 1.6), h


def slots(game: str, count: int = 8) -> dict[str, Slot]:
    """Layout of a game's table: baccarat player left / banker right (third card to the side);
    blackjack the common hand and its step cards below, the dealer's cards above; roulette
    the result plate by the wheel."""
    if game == "roulette":
        return {"number": Slot("number", 0.84, 0.26)}
    if game == "baccarat":
        out = {}
        for hand, x0 in (("player", 0.16), ("banker", 0.6)):
            for i in range(3):
                out[f"{hand}{i}"] = Slot(f"{hand}{i}", x0 + i * 0.085, 0.62 + (0.04 if i == 2 else 0.0))
        return out
    if game == "blackjack":
        out = {f"dealer{i}": Slot(f"dealer{i}", 0.12 + i * 0.085, 0.34) for i in range(count)}
        out.update({f"hand{i}": Slot(f"hand{i}", 0.12 + i * 0.085, 0.74) for i in range(2)})
        out.update({f"step{i}": Slot(f"step{i}", 0.12 + (i + 1) * 0.085, 0.74) for i in range(1, count)})
        return out
    raise ValueError(f"unknown game {game!r}")


def reveal_of(game: str, outcome: dict) -> dict[str, str | int]:
    """What the table shows once the round's outcome is dealt: slot -> card code (or number).

    Baccarat: `player`/`banker` of round.settled; roulette: `number`; blackjack: the dealer's cards
    after the up card (its earlier reveals are `shown_in`'s: blackjack.dealt, blackjack.card)."""
    if game == "roulette":
        return {"number": int(outcome["number"])}
    if game == "blackjack":
        return {f"dealer{i}": code for i, code in enumerate(outcome["dealer"]) if i >= 1}
    if game == "baccarat":
        out: dict[str, str | int] = {}
        for hand in ("player", "banker"):
            for i, code in enumerate(outcome[hand]):
                out[f"{hand}{i}"] = code
        return out
    raise ValueError(f"no single reveal for {game!r}")


def shown_in(kind: str, data: dict) -> dict[str, str | int] | None:
    """What a journal entry of a play phase puts on the table (None: nothing to see)."""
    if kind == "blackjack.dealt":
        return {"hand0": data["hand"][0], "dealer0": data["dealer_up"], "hand1": data["hand"][1]}
    if kind == "blackjack.card":
        return {f"step{data['step']}": data["card"]}
    return None


def baccarat_order(reveal: dict[str, str | int]) -> list[str]:
    """Dealing order: player, banker, player, banker, then the third cards."""
    order = ["player0", "banker0", "player1", "banker1", "player2", "banker2"]
    return [s for s in order if s in reveal]


def blackjack_reveals(dealt: dict, cards: list[dict], dealer: list[str]) -> list[dict[str, str | int]]:
    """The blackjack reveals of one round, each a slot -> code map, in the order they are shown:
    the initial deal (`blackjack.dealt`), each step card (`blackjack.card`), the dealer's cards
    after the up card (from `round.settled` outcome `dealer`)."""
    out = [shown_in("blackjack.dealt", dealt)] + [shown_in("blackjack.card", c) for c in cards]
    if len(dealer) > 1:
        out.append(reveal_of("blackjack", {"dealer": dealer}))
    return [r for r in out if r is not None]
