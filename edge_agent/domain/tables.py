"""Game tables and their versioned rule sets (limits and paytable)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edge_agent.domain import games


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
        return games.get(self.game).spots()

    def describe(self) -> dict[str, object]:
        described = games.get(self.game).describe()
        return {
            "version": self.version,
            "game": self.game,
            "limits": {
                "min_bet": self.limits.min_bet,
                "max_bet_per_spot": self.limits.max_bet_per_spot,
                "max_per_round": self.limits.max_per_round,
            },
            "paytable": described["paytable"],
            "spots": described["spots"],
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
    # The game's own options (e.g. a play phase's decision window), read through PlayContext.settings.
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def game(self) -> str:
        return self.rules.game
