"""Game tables and their versioned rule sets (limits and paytable)."""
from __future__ import annotations

from dataclasses import dataclass, field

from contract import fairness


@dataclass(frozen=True)
class Limits:
    """Per player and round, in minor units."""

    min_bet: int = 100
    max_bet_per_spot: int = 100_000
    max_per_round: int = 500_000


@dataclass(frozen=True)
class RuleSet:
    """What a player agrees to when betting; a bet naming another version is refused."""

    version: str
    game: str
    limits: Limits = field(default_factory=Limits)

    def spots(self) -> list[str]:
        return fairness.roulette_spots() if self.game == fairness.ROULETTE else sorted(fairness.BACCARAT_SPOTS)

    def describe(self) -> dict[str, object]:
        paytable = (
            {"straight": "35:1", "red/black/odd/even/low/high": "1:1", "dozen/column": "2:1",
             "zero": "loses every outside bet"}
            if self.game == fairness.ROULETTE
            else {"player": "1:1", "banker": "1:1 less 5% commission (floor)", "tie": "8:1",
                  "player/banker on tie": "stake returned"}
        )
        return {
            "version": self.version,
            "game": self.game,
            "limits": {
                "min_bet": self.limits.min_bet,
                "max_bet_per_spot": self.limits.max_bet_per_spot,
                "max_per_round": self.limits.max_per_round,
            },
            "paytable": paytable,
            "spots": self.spots(),
        }


@dataclass(frozen=True)
class TableSpec:
    table_id: str
    rules: RuleSet
    betting_window_s: float = 15.0
    # Pause between settlement and the next opening: the dealer's reveal on video.
    reveal_s: float = 3.0
    # When the table has a studio feed, rounds run only while the feed is live.
    requires_feed: bool = False

    @property
    def game(self) -> str:
        return self.rules.game
