"""Punto banco baccarat (CONTRACT section 3): 8-deck shoe, standard tableau, player/banker/tie."""
from __future__ import annotations

from contract import fairness
from edge_agent.domain.games.base import Game, Settlement
from edge_agent.domain.rounds import Round


class Baccarat(Game):
    name = fairness.BACCARAT
    rules_version = "baccarat/1"

    def spots(self) -> list[str]:
        return sorted(fairness.BACCARAT_SPOTS)

    def valid_spot(self, spot: object) -> bool:
        return isinstance(spot, str) and spot in fairness.BACCARAT_SPOTS

    def paytable(self) -> dict[str, str]:
        return {"player": "1:1", "banker": "1:1 less 5% commission (floor)", "tie": "8:1",
                "player/banker on tie": "stake returned"}

    def settle(self, r: Round, server_seed: bytes, client_seed: str) -> Settlement:
        result = fairness.baccarat_outcome(fairness.byte_stream(server_seed, client_seed, r.n))
        return Settlement(result, [{"bet_id": b.bet_id, "payout": fairness.payout(self.name, b.spot, b.amount, result)}
                                   for b in r.bets])
