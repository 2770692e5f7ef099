"""European roulette (CONTRACT section 3): one number from 37, straight and outside bets."""
from __future__ import annotations

from contract import fairness
from edge_agent.domain.games.base import Game, Settlement
from edge_agent.domain.rounds import Round


class Roulette(Game):
    name = fairness.ROULETTE
    rules_version = "roulette/1"

    def spots(self) -> list[str]:
        return fairness.roulette_spots()

    def valid_spot(self, spot: object) -> bool:
        return isinstance(spot, str) and fairness.valid_spot(self.name, spot)

    def paytable(self) -> dict[str, str]:
        return {"straight": "35:1", "red/black/odd/even/low/high": "1:1", "dozen/column": "2:1",
                "zero": "loses every outside bet"}

    def settle(self, r: Round, server_seed: bytes, client_seed: str) -> Settlement:
        result = fairness.roulette_outcome(fairness.byte_stream(server_seed, client_seed, r.n))
        return Settlement(result, [{"bet_id": b.bet_id, "payout": fairness.payout(self.name, b.spot, b.amount, result)}
                                   for b in r.bets])
