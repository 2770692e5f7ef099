"""Punto banco baccarat (CONTRACT section 3): 8-deck shoe, standard tableau, player/banker/tie."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from contract import fairness
from edge_agent.domain.games.base import DrawGame


class Baccarat(DrawGame):
    name = fairness.BACCARAT
    rules_version = "baccarat/1"

    def spots(self) -> list[str]:
        return sorted(fairness.BACCARAT_SPOTS)

    def valid_spot(self, spot: object) -> bool:
        return isinstance(spot, str) and spot in fairness.BACCARAT_SPOTS

    def paytable(self) -> dict[str, str]:
        return {"player": "1:1", "banker": "1:1 less 5% commission (floor)", "tie": "8:1",
                "player/banker on tie": "stake returned"}

    def draw(self, stream: Iterator[int]) -> dict[str, Any]:
        return fairness.baccarat_outcome(stream)

    def payout(self, spot: str, stake: int, outcome: dict[str, Any]) -> int:
        return fairness.payout(self.name, spot, stake, outcome)
