"""Games: one module per game behind one interface (`base.Game`), registered here by name.

Adding a game touches only:
1. `edge_agent/domain/games/<game>.py`: a `Game` subclass (and its rule math, or a
   `contract/<game>.py` the verifier shares), registered below (`register(Blackjack())`);
2. its section of CONTRACT.md (outcome, payouts, journal kinds) and the verifier's check;
3. its UI panel in the web client.
Nothing of the engine (scheduler, betting, wallet, journal, sync) changes.

The interface, in the order a round uses it:
- `spots()` / `valid_spot(spot)` / `paytable()` / `describe()`: what a player may bet and what it pays;
  `rules_version` is the default version of a table's rules (a bet naming another is refused).
- `admit(round, player, spot, amount)`: the game's own bet admission beyond the table limits
  (blackjack: one bet per player per round). Raise `DomainError`, change nothing.
- `play_phase(ctx) -> PlayPhase | None`: an optional phase the round scheduler runs after betting
  closes and before settlement (`edge_agent.app.rounds`). Its `run()` is awaited by the table's loop;
  through `ctx` (`base.PlayContext`) it journals its own entries (`ctx.record`, durable on return,
  kinds listed in `play_kinds`), opens decision windows (`ctx.window`), announces cards
  (`ctx.announce`) and checks extra stakes (`ctx.check_extra_stake`). Players' decisions arrive
  through `act(player, action)` (WebSocket `{"type": "act"}` and `POST /v1/tables/{id}/actions`,
  routed by `Casino.act`).
- `extra_stake(kind, data)`: which play entries add a stake to a bet (double, split); the state's
  fold debits it, `Round.staked` counts it, and a void refunds `Bet.stake` (every stake of the bet).
- `settle(round, server_seed, client_seed) -> Settlement`: the outcome and every payout, computed
  from the seeds, the journaled bets and the round's journaled play entries (`Round.play`) only,
  so recovery after a crash and a regulator's re-check (`rounds.replay`) reach the same result.
- `void_cut_short`: whether a round whose play phase a crash or a stop cut short is voided (every
  stake refunded; blackjack, whose players could not finish deciding) rather than settled.
"""
from __future__ import annotations

from edge_agent.domain.games.baccarat import Baccarat
from edge_agent.domain.games.base import Answer, Game, PlayContext, PlayPhase, RoundEnded, Settlement
from edge_agent.domain.games.blackjack import Blackjack
from edge_agent.domain.games.roulette import Roulette

__all__ = [
    "REGISTRY",
    "Answer",
    "Game",
    "PlayContext",
    "PlayPhase",
    "RoundEnded",
    "Settlement",
    "get",
    "names",
    "owner_of_kind",
    "register",
    "unregister",
]

REGISTRY: dict[str, Game] = {}
_KINDS: dict[str, Game] = {}


def register(game: Game) -> Game:
    """Make a game playable by name (tables name it in the configuration)."""
    for kind in game.play_kinds:
        owner = _KINDS.get(kind)
        if owner is not None and owner.name != game.name:
            raise ValueError(f"journal kind {kind!r} already belongs to {owner.name}")
        _KINDS[kind] = game
    REGISTRY[game.name] = game
    return game


def unregister(name: str) -> None:
    game = REGISTRY.pop(name, None)
    for kind in game.play_kinds if game else ():
        _KINDS.pop(kind, None)


for _game in (Roulette(), Baccarat(), Blackjack()):
    register(_game)


def get(name: str) -> Game:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown game {name!r}") from None


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def owner_of_kind(kind: str) -> Game | None:
    """The game whose play phase journals `kind`, if any."""
    return _KINDS.get(kind)
