"""European roulette (CONTRACT section 3): one number from 37, straight and outside bets."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from contract import fairness
from edge_agent.domain.games.base import DrawGame


class Roulette(DrawGame):
    name = fairness.ROULETTE
    rules_version = "roulette/1"

    def spots(self) -> list[str]:
        return fairness.roulette_spots()

    def valid_spot(self, spot: object) -> bool:
        return isinstance(spot, str) and fairness.valid_spot(self.name, spot)

    def paytable(self) -> dict[str, str]:
        return {"straight": "35:1", "red/black/odd/even/low/high": "1:1", "dozen/column": "2:1",
                "zero": "loses every outside bet"}

    def draw(self, stream: Iterator[int]) -> dict[str, Any]:
        return fairness.roulette_outcome(stream)

    def payout(self, spot: str, stake: int, outcome: dict[str, Any]) -> int:
        return fairness.payout(self.name, spot, stake, outcome)
