"""The one interface every game implements (see `edge_agent.domain.games` for how to add one)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from contract import fairness
from edge_agent.domain.rounds import Round

#: how a play phase answers a decision: (result, None) once durable, (None, error) if the journal failed
Answer = Callable[[dict[str, Any] | None, BaseException | None], None]


@dataclass(frozen=True)
class Settlement:
    """What `round.settled` carries beyond the seeds: the outcome and one payout per bet, in bet order.

    A payout is everything credited for the bet, every stake of it included; 0 for a loss."""

    outcome: dict[str, Any]
    payouts: list[dict[str, Any]]  # [{"bet_id", "payout"}]


class PlayContext(Protocol):
    """What the round scheduler hands a game's play phase (implemented in `edge_agent.app.rounds`).

    Every method goes through the application layer: journal entries are folded into the state
    as they are appended, stakes are debited by the fold, and `record` returns once durable."""

    @property
    def round(self) -> Round:
        """The live round (bets, extra stakes and the play entries so far)."""

    @property
    def server_seed(self) -> bytes:
        """This round's seed (secret until settlement: never put it in an entry or an event)."""

    @property
    def client_seed(self) -> str:
        """Fixed when betting closed (CONTRACT section 3)."""

    @property
    def settings(self) -> Mapping[str, Any]:
        """The table's game options from the configuration (e.g. a decision window)."""

    def now(self) -> int:
        """Milliseconds, the journal's clock."""

    async def record(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """Journal one entry of this round (`kind` in the game's `play_kinds`; table_id, chain_id and n
        are filled in), fold it and return it once durable. Raises `RoundEnded` if the round is over."""

    def record_soon(self, kind: str, data: dict[str, Any],
                    done: Callable[[dict[str, Any], BaseException | None], None]) -> dict[str, Any]:
        """`record` without waiting: append and fold now, return the entry, and call `done(entry,
        None)` from the event loop once it is durable (`done(entry, error)` if the journal fails).
        For entries no camera must see (a decision). Raises `RoundEnded` if the round is over."""

    def announce(self, event: dict[str, Any]) -> None:
        """Publish an event to the table's watchers (`table_id` and `n` are filled in)."""

    def announce_with_result(self, event: dict[str, Any]) -> None:
        """Publish an event to the table's watchers together with the round's result (round.settled
        or round.voided, and each player's own settlement or refund): one write per socket instead
        of one more table-wide message. At once when the table's reveal is witnessed on camera."""

    def tell(self, player: str, event: dict[str, Any]) -> None:
        """Publish an event to one player."""

    async def window(self, seconds: float) -> bool:
        """Wait out a decision window; False when the round ended meanwhile (voided)."""

    def check_extra_stake(self, player: str, amount: int) -> None:
        """Refuse (DomainError) an extra stake the player's funds, limits or the table's round maximum forbid."""

    def check_player(self, player: str) -> None:
        """Refuse (DomainError) any decision of a player who may not play now (exclusion, break)."""


class PlayPhase(Protocol):
    """A game's own part of a round, run by the scheduler after betting closes, before settlement."""

    async def run(self) -> None:
        """Play the round out (deal, decision windows, cards). Return when settlement may follow."""

    async def act(self, player: str, action: Mapping[str, Any]) -> dict[str, Any]:
        """A player's decision during the play phase; returns once durable; DomainError to refuse."""

    def submit(self, player: str, action: Mapping[str, Any], answer: Answer) -> None:
        """`act` without a task: refuse at once (DomainError, nothing changed) or take the decision
        now and call `answer(result, None)` once it is durable (`answer(None, error)` if the journal
        fails). The answer comes before anything the phase publishes after the decision."""


class RoundEnded(Exception):
    """The round was voided (feed lost, operator, exclusion) while its play phase ran."""


class Game(ABC):
    """A game: spots, bet admission, outcome from the fairness stream, payouts, paytable, play phase."""

    name: ClassVar[str]
    #: the version a table's rules default to (`<game>/<n>`); a new paytable means a new version
    rules_version: ClassVar[str]
    #: journal kinds of this game's play phase, folded into `Round.play` (CONTRACT section 3)
    play_kinds: ClassVar[frozenset[str]] = frozenset()
    #: a round whose play phase was cut short (crash, stop) is voided rather than settled
    void_cut_short: ClassVar[bool] = False

    @abstractmethod
    def spots(self) -> list[str]:
        """Every spot a bet may name, in display order."""

    def valid_spot(self, spot: object) -> bool:
        return isinstance(spot, str) and spot in self.spots()

    @abstractmethod
    def paytable(self) -> dict[str, str]:
        """Human-readable payouts, shown with the rules."""

    def admit(self, r: Round, player: str, spot: str, amount: int) -> None:
        """Rules of this game on who may bet what, beyond the table's limits (e.g. one bet per
        player per round). Raise `DomainError` to refuse; change nothing."""

    @abstractmethod
    def settle(self, r: Round, server_seed: bytes, client_seed: str) -> Settlement:
        """Outcome and payouts from the seeds, the bets and the round's play entries only."""

    def extra_stake(self, kind: str, data: Mapping[str, Any]) -> tuple[str, int] | None:
        """(bet_id, amount) when a play entry adds a stake to a bet (debited by the state's fold)."""
        return None

    def play_phase(self, ctx: PlayContext) -> PlayPhase | None:
        """The part of the round between betting close and settlement; None: settle at once."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"paytable": self.paytable(), "spots": self.spots()}



class DrawGame(Game):
    """A game settled by one draw from the fairness stream and a paytable per spot (no play phase)."""

    @abstractmethod
    def draw(self, stream: Iterator[int]) -> dict[str, Any]:
        """The outcome, from the round's byte stream (CONTRACT section 3)."""

    @abstractmethod
    def payout(self, spot: str, stake: int, outcome: dict[str, Any]) -> int:
        """Everything credited for one bet, stake included; 0 for a loss."""

    def settle(self, r: Round, server_seed: bytes, client_seed: str) -> Settlement:
        result = self.draw(fairness.byte_stream(server_seed, client_seed, r.n))
        return Settlement(result, [{"bet_id": b.bet_id, "payout": self.payout(b.spot, b.amount, result)}
                                   for b in r.bets])
