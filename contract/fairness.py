"""Provably fair rounds: CONTRACT section 3, exactly.

Seed chain, client seed, HMAC byte stream, rejection-sampled uniform draw, European roulette,
punto banco baccarat (8 decks, Fisher-Yates, standard tableau) and the paytable. Pure functions;
the browser's fairness panel and `edge-agent verify` re-implement or import these.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator
from typing import Any

ROULETTE = "roulette"
BACCARAT = "baccarat"
GAMES = (ROULETTE, BACCARAT)

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


# --- seed chain -------------------------------------------------------------------------------

def derive_chain(seed_top: bytes, length: int) -> list[bytes]:
    """[seed_0, seed_1, ..., seed_L] from seed_L, where seed_{k-1} = SHA-256(seed_k)."""
    if len(seed_top) != 32:
        raise ValueError("seed_L must be 32 bytes")
    if length < 1:
        raise ValueError("chain length must be at least 1")
    chain = [seed_top]
    for _ in range(length):
        chain.append(hashlib.sha256(chain[-1]).digest())
    chain.reverse()
    return chain


def seed_matches_commitment(server_seed_hex: str, n: int, commitment_hex: str) -> bool:
    """Hashing server_seed n times gives the chain's commitment (seed_0)."""
    try:
        s = bytes.fromhex(server_seed_hex)
    except ValueError:
        return False
    if len(s) != 32 or n < 1:
        return False
    for _ in range(n):
        s = hashlib.sha256(s).digest()
    return s.hex() == commitment_hex


# --- client seed and byte stream --------------------------------------------------------------

def client_seed(bets: Iterable[tuple[str, str]]) -> str:
    """SHA-256 over f"{bet_id}:{player_seed}\\n" for each accepted bet, in journal order."""
    h = hashlib.sha256()
    for bet_id, player_seed in bets:
        h.update(f"{bet_id}:{player_seed}\n".encode())
    return h.hexdigest()


def byte_stream(server_seed: bytes, client_seed_hex: str, n: int) -> Iterator[int]:
    """Big-endian u32 values of HMAC-SHA256(server_seed, f"{client_seed}:{n}:{i}") blocks."""
    i = 0
    while True:
        block = hmac.new(server_seed, f"{client_seed_hex}:{n}:{i}".encode(), hashlib.sha256).digest()
        for off in range(0, 32, 4):
            yield int.from_bytes(block[off:off + 4], "big")
        i += 1


def uniform(stream: Iterator[int], m: int) -> int:
    """Uniform integer in [0, m) by rejection sampling (no modulo bias)."""
    if m < 1:
        raise ValueError("m must be positive")
    limit = 2**32 - (2**32 % m)
    while True:
        u = next(stream)
        if u < limit:
            return u % m


# --- games ------------------------------------------------------------------------------------

RED = frozenset({1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36})
RANKS = "A23456789TJQK"
SUITS = "SHDC"
SHOE_SIZE = 416


def roulette_outcome(stream: Iterator[int]) -> dict[str, Any]:
    return {"number": uniform(stream, 37)}


def card_code(c: int) -> str:
    return RANKS[c % 13] + SUITS[(c // 13) % 4]


def card_value(code: str) -> int:
    r = code[0]
    if r == "A":
        return 1
    if r in "TJQK":
        return 0
    return int(r)


def shuffled_shoe(stream: Iterator[int]) -> list[int]:
    shoe = list(range(SHOE_SIZE))
    for i in range(SHOE_SIZE - 1, 0, -1):
        j = uniform(stream, i + 1)
        shoe[i], shoe[j] = shoe[j], shoe[i]
    return shoe


def banker_draws(banker_total: int, player_third: int | None) -> bool:
    if player_third is None:
        return banker_total <= 5
    if banker_total <= 2:
        return True
    if banker_total == 3:
        return player_third != 8
    if banker_total == 4:
        return 2 <= player_third <= 7
    if banker_total == 5:
        return 4 <= player_third <= 7
    if banker_total == 6:
        return player_third in (6, 7)
    return False


def deal_baccarat(shoe: list[int]) -> dict[str, Any]:
    cards = iter(card_code(c) for c in shoe)
    player = [next(cards)]
    banker = [next(cards)]
    player.append(next(cards))
    banker.append(next(cards))

    def total(hand: list[str]) -> int:
        return sum(card_value(c) for c in hand) % 10

    pt, bt = total(player), total(banker)
    if pt < 8 and bt < 8:
        third: int | None = None
        if pt <= 5:
            player.append(next(cards))
            third = card_value(player[-1])
        if banker_draws(bt, third):
            banker.append(next(cards))
    pt, bt = total(player), total(banker)
    winner = "player" if pt > bt else "banker" if bt > pt else "tie"
    return {"player": player, "banker": banker, "winner": winner}


def baccarat_outcome(stream: Iterator[int]) -> dict[str, Any]:
    return deal_baccarat(shuffled_shoe(stream))


def outcome(game: str, server_seed: bytes, client_seed_hex: str, n: int) -> dict[str, Any]:
    stream = byte_stream(server_seed, client_seed_hex, n)
    if game == ROULETTE:
        return roulette_outcome(stream)
    if game == BACCARAT:
        return baccarat_outcome(stream)
    raise ValueError(f"unknown game {game!r}")


# --- spots and payouts ------------------------------------------------------------------------

BACCARAT_SPOTS = frozenset({"player", "banker", "tie"})


def roulette_spots() -> list[str]:
    return (
        [f"straight:{k}" for k in range(37)]
        + ["red", "black", "odd", "even", "low", "high"]
        + [f"dozen:{d}" for d in (1, 2, 3)]
        + [f"column:{c}" for c in (1, 2, 3)]
    )


ROULETTE_SPOTS = frozenset(roulette_spots())


def valid_spot(game: str, spot: object) -> bool:
    """Exact membership in the game's spot set: no pattern can let `"red\\n"` or `"straight:07"`
    through to a payout lookup that does not know it."""
    if not isinstance(spot, str):
        return False
    if game == ROULETTE:
        return spot in ROULETTE_SPOTS
    if game == BACCARAT:
        return spot in BACCARAT_SPOTS
    return False


def _roulette_multiplier(spot: str, number: int) -> int:
    """Total returned per unit staked (stake included); 0 for a loss."""
    if spot.startswith("straight:"):
        return 36 if int(spot[9:]) == number else 0
    if number == 0:
        return 0
    if spot.startswith("dozen:"):
        d = int(spot[6:])
        return 3 if 12 * (d - 1) < number <= 12 * d else 0
    if spot.startswith("column:"):
        c = int(spot[7:])
        return 3 if (number - 1) % 3 == c - 1 else 0
    won = {
        "red": number in RED,
        "black": number not in RED,
        "odd": number % 2 == 1,
        "even": number % 2 == 0,
        "low": 1 <= number <= 18,
        "high": 19 <= number <= 36,
    }[spot]
    return 2 if won else 0


def payout(game: str, spot: str, stake: int, result: dict[str, Any]) -> int:
    """Everything credited at settlement for one bet, stake included (CONTRACT section 3)."""
    if game == ROULETTE:
        return stake * _roulette_multiplier(spot, result["number"])
    if game == BACCARAT:
        winner = result["winner"]
        if spot == "tie":
            return stake * 9 if winner == "tie" else 0
        if winner == "tie":
            return stake
        if spot != winner:
            return 0
        return stake * 2 if spot == "player" else stake + (stake * 95) // 100
    raise ValueError(f"unknown game {game!r}")


def max_multiplier(game: str, spot: str) -> int:
    """The largest total return per unit staked on a spot (for exposure limits)."""
    if game == ROULETTE:
        if spot.startswith("straight:"):
            return 36
        if spot.startswith(("dozen:", "column:")):
            return 3
        return 2
    return 9 if spot == "tie" else 2
