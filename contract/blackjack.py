"""Blackjack for any number of players at one table: CONTRACT section 3, the Blackjack paragraph.

Every bet plays the same dealt cards: one shoe, one shared first hand `[S[0], S[2]]`, one
dealer up card `S[1]`, then decision steps in which every hand that takes a card takes the same
card `S[next]`. Pure rules, no I/O: the edge's round engine drives a `Play`, the verifier
replays one from the journal (`check_round`), the browser's fairness panel mirrors both.

Refusals raise `Refused` with a stable machine-readable code; a refused decision changes
nothing.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contract import fairness

BLACKJACK = "blackjack"
SPOT = "hand"

HIT, STAND, DOUBLE, SPLIT = "hit", "stand", "double", "split"
ACTIONS = (HIT, STAND, DOUBLE, SPLIT)

# Journal kinds (CONTRACT section 3, in addition to section 2).
DEALT = "blackjack.dealt"
DECISION = "blackjack.decision"
CARD = "blackjack.card"
KINDS = (DEALT, DECISION, CARD)

# Refusal codes (stable; the web client and integrators switch on them).
NO_BET = "no_bet_in_round"
UNKNOWN_ACTION = "unknown_action"
HAND_FINISHED = "hand_finished"          # the bet has no open hand left
HAND_TAKES_CARD = "hand_takes_card"      # a split hand waiting for its second card takes it, no choice
DOUBLE_NOT_ALLOWED = "double_not_allowed"  # not exactly two cards, or a split ace
SPLIT_NOT_ALLOWED = "split_not_allowed"  # not the first hand, not two cards of equal value
ALREADY_SPLIT = "already_split"          # one split per round
ALREADY_DECIDED = "already_decided"      # one decision per bet per step
DECISIONS_CLOSED = "decisions_closed"    # the step's window has closed (or another step is open)

# Highest total return per unit of main stake: split, both hands doubled, both won.
MAX_MULTIPLIER = 8


class Refused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --- values and totals ------------------------------------------------------------------------

def card_value(code: str) -> int:
    """2-9 face value, T/J/Q/K 10, A 1 (an ace's other value, 11, is in `total`)."""
    r = code[0]
    if r == "A":
        return 1
    if r in "TJQK":
        return 10
    return int(r)


def total(cards: Iterable[str]) -> tuple[int, bool]:
    """(total, soft): the highest total <= 21 counting an ace as 11 where possible, else the lowest.

    `soft` is True when an ace counts 11 in that total."""
    hard = 0
    ace = False
    for c in cards:
        v = card_value(c)
        hard += v
        ace = ace or v == 1
    if ace and hard + 10 <= 21:
        return hard + 10, True
    return hard, False


def hand_total(cards: Iterable[str]) -> int:
    return total(cards)[0]


def shoe(server_seed: bytes, client_seed_hex: str, n: int) -> list[str]:
    """The shuffled shoe S[0] ... S[415] as card codes: baccarat's shoe and shuffle."""
    stream = fairness.byte_stream(server_seed, client_seed_hex, n)
    return [fairness.card_code(c) for c in fairness.shuffled_shoe(stream)]


def dealer_hand(shoe_cards: list[str], next_index: int) -> list[str]:
    """[S[1], S[next], S[next+1], ...] drawing while the total is below 17 (stands on every 17)."""
    hand = [shoe_cards[1]]
    i = next_index
    while len(hand) < 2 or hand_total(hand) < 17:
        hand.append(shoe_cards[i])
        i += 1
    return hand


def is_dealer_blackjack(dealer: list[str]) -> bool:
    return hand_total(dealer[:2]) == 21


# --- one bet's hands --------------------------------------------------------------------------

@dataclass
class Hand:
    cards: list[str]
    stake: int
    split_hand: bool = False     # created by a split (never a blackjack)
    split_aces: bool = False     # finished as soon as it has two cards
    doubled: bool = False
    done: bool = False

    @property
    def total(self) -> int:
        return hand_total(self.cards)

    @property
    def bust(self) -> bool:
        return self.total > 21


@dataclass
class BetPlay:
    bet_id: str
    main_stake: int
    hands: list[Hand]
    blackjack: bool = False      # the first hand is a blackjack (finished at deal)
    split: bool = False

    @property
    def staked(self) -> int:
        """Every stake of the bet: main, plus each double and the split."""
        return sum(h.stake for h in self.hands)

    @property
    def extra_staked(self) -> int:
        return self.staked - self.main_stake

    def current(self) -> Hand | None:
        for h in self.hands:  # a loop, not next(genexpr): called for every bet in every step
            if not h.done:
                return h
        return None

    def view(self) -> dict[str, Any]:
        return {"bet_id": self.bet_id, "hands": [
            {"cards": list(h.cards), "total": h.total, "soft": total(h.cards)[1], "stake": h.stake,
             "doubled": h.doubled, "split_hand": h.split_hand, "done": h.done, "bust": h.bust}
            for h in self.hands], "blackjack": self.blackjack, "staked": self.staked}


def _take(h: Hand, card: str) -> None:
    h.cards.append(card)
    t = h.total
    if t >= 21 or (h.split_aces and len(h.cards) >= 2):
        h.done = True


# --- the round's play -------------------------------------------------------------------------

@dataclass
class StepResult:
    step: int
    card: str | None             # None: no hand took a card, the players' phase is over
    takers: list[str]            # bet ids whose hand took the card


@dataclass
class Play:
    """A blackjack round from the initial deal to the payouts, for every bet at once."""

    shoe: list[str]
    bets: dict[str, BetPlay] = field(default_factory=dict)
    next: int = 3
    step: int = 1
    decisions: dict[str, str] = field(default_factory=dict)  # this step's accepted decisions
    players_done: bool = False
    steps_taken: int = 0

    @classmethod
    def deal(cls, shoe_cards: list[str], bets: Iterable[tuple[str, int]]) -> Play:
        """The initial deal: every bet's first hand is [S[0], S[2]]; a blackjack is finished at once."""
        p = cls(shoe=shoe_cards)
        first = [shoe_cards[0], shoe_cards[2]]
        bj = hand_total(first) == 21
        for bet_id, amount in bets:
            p.bets[bet_id] = BetPlay(bet_id, amount, [Hand(list(first), amount, done=bj)], blackjack=bj)
        return p

    @property
    def shared_hand(self) -> list[str]:
        return [self.shoe[0], self.shoe[2]]

    @property
    def dealer_up(self) -> str:
        return self.shoe[1]

    def open_bets(self) -> list[str]:
        """Bets with a current hand that needs a decision in this step (not a one-card split hand)."""
        out = []
        for b in self.bets.values():
            h = b.current()
            if h is not None and len(h.cards) >= 2:
                out.append(b.bet_id)
        return out

    def allowed(self, bet_id: str) -> list[str]:
        """The actions the bet's current hand may take in this step (empty when none)."""
        b = self.bets.get(bet_id)
        if b is None or self.players_done or bet_id in self.decisions:
            return []
        h = b.current()
        if h is None or len(h.cards) < 2:
            return []
        out = [HIT, STAND]
        if len(h.cards) == 2 and not h.split_aces:
            out.append(DOUBLE)
        if self._can_split(b, h):
            out.append(SPLIT)
        return out

    @staticmethod
    def _can_split(b: BetPlay, h: Hand) -> bool:
        return (not b.split and h is b.hands[0] and len(h.cards) == 2
                and card_value(h.cards[0]) == card_value(h.cards[1]))

    def check(self, bet_id: str, action: Any) -> int:
        """Validate a decision for this step; return the stake it adds (0 for hit and stand)."""
        b = self.bets.get(bet_id)
        if b is None:
            raise Refused(NO_BET, "no blackjack bet with this id in the round")
        if action not in ACTIONS:
            raise Refused(UNKNOWN_ACTION, f"action must be one of {ACTIONS}")
        if self.players_done:
            raise Refused(DECISIONS_CLOSED, "the players' phase is over")
        h = b.current()
        if h is None:
            raise Refused(HAND_FINISHED, "every hand of this bet is finished")
        if len(h.cards) < 2:
            raise Refused(HAND_TAKES_CARD, "the split hand takes this step's card; there is nothing to decide")
        if bet_id in self.decisions:
            raise Refused(ALREADY_DECIDED, "this bet has already decided in this step")
        if action == DOUBLE:
            if len(h.cards) != 2 or h.split_aces:
                raise Refused(DOUBLE_NOT_ALLOWED, "double only on a hand of exactly two cards, not a split ace")
            return h.stake
        if action == SPLIT:
            if b.split:
                raise Refused(ALREADY_SPLIT, "one split per round")
            if not self._can_split(b, h):
                raise Refused(SPLIT_NOT_ALLOWED, "split only the first hand, two cards of equal value")
            return b.hands[0].stake
        return 0

    def decide(self, bet_id: str, action: str) -> int:
        """Accept a decision for this step (after `check`); the stake is added when the step runs."""
        added = self.check(bet_id, action)
        self.decisions[bet_id] = action
        return added

    def everyone_decided(self) -> bool:
        return all(b in self.decisions for b in self.open_bets())

    def run_step(self) -> StepResult:
        """Close the step: every current hand takes the step's card, decides, or stands."""
        if self.players_done:
            raise RuntimeError("the players' phase is over")
        card = self.shoe[self.next]
        takers: list[str] = []
        for b in self.bets.values():
            h = b.current()
            if h is None:
                continue
            if len(h.cards) < 2:
                _take(h, card)
                takers.append(b.bet_id)
                continue
            action = self.decisions.get(b.bet_id, STAND)
            if action == HIT:
                _take(h, card)
                takers.append(b.bet_id)
            elif action == DOUBLE:
                h.stake *= 2
                h.doubled = True
                _take(h, card)
                h.done = True
                takers.append(b.bet_id)
            elif action == SPLIT:
                aces = h.cards[0][0] == "A"
                second = h.cards.pop()
                b.split = True
                b.hands.append(Hand([second], h.stake, split_hand=True, split_aces=aces))
                h.split_aces = aces
                _take(h, card)
                takers.append(b.bet_id)
            else:  # stand
                h.done = True
                nxt = b.current()
                if nxt is not None and nxt.split_hand and len(nxt.cards) == 1:
                    _take(nxt, card)
                    takers.append(b.bet_id)
        self.decisions = {}
        step = self.step
        if takers:
            self.next += 1
            self.steps_taken += 1
            self.step += 1
            return StepResult(step, card, takers)
        self.players_done = True
        return StepResult(step, None, [])

    # --- dealer and settlement --------------------------------------------------------------

    def dealer(self) -> list[str]:
        return dealer_hand(self.shoe, self.next)

    def outcome(self) -> dict[str, Any]:
        return {"dealer": self.dealer(), "steps": self.steps_taken}

    def payouts(self) -> dict[str, int]:
        dealer = self.dealer()
        # The dealer's facts once per round, not once per bet (thousands of bets at one table).
        dbj, d = is_dealer_blackjack(dealer), hand_total(dealer)
        return {bet_id: _payout(b, dbj, d) for bet_id, b in self.bets.items()}


def bet_payout(b: BetPlay, dealer: list[str]) -> int:
    """Everything credited at settlement for one bet, every stake included (CONTRACT section 3)."""
    return _payout(b, is_dealer_blackjack(dealer), hand_total(dealer))


def _payout(b: BetPlay, dealer_blackjack: bool, d: int) -> int:
    if dealer_blackjack:
        return b.extra_staked + (b.main_stake if b.blackjack else 0)
    out = 0
    for i, h in enumerate(b.hands):
        st = h.stake
        if i == 0 and b.blackjack:
            out += st + st * 3 // 2
            continue
        t = h.total
        if t > 21:
            continue
        elif d > 21 or t > d:
            out += 2 * st
        elif t == d:
            out += st
    return out


def play_round(shoe_cards: list[str], bets: Iterable[tuple[str, int]],
               decisions: Mapping[int, Mapping[str, str]]) -> Play:
    """Play a whole round from decisions by step ({step: {bet_id: action}}); refused ones are skipped."""
    p = Play.deal(shoe_cards, bets)
    while not p.players_done:
        for bet_id, action in decisions.get(p.step, {}).items():
            try:
                p.decide(bet_id, action)
            except Refused:
                pass
        p.run_step()
    return p


# --- the verifier -----------------------------------------------------------------------------

def check_round(shoe_cards: list[str], bets: list[dict[str, Any]], entries: list[dict[str, Any]],
                settled: dict[str, Any]) -> tuple[int | None, str] | None:
    """Recompute a settled round from its journal entries; (seq, reason) of the first bad one, or None.

    `bets`: the round's `bet.placed` data in journal order; `entries`: its `blackjack.*` entries
    in journal order; `settled`: the `round.settled` entry (the seed it reveals gave the shoe)."""
    s_seq = settled["seq"]
    d_set = settled["data"]
    seen_players: set[str] = set()
    for b in bets:
        if b["spot"] != SPOT:
            return s_seq, f"bet {b['bet_id']} is not on spot {SPOT!r}"
        if b["player"] in seen_players:
            return s_seq, f"bet {b['bet_id']}: a second bet of one player in the round"
        seen_players.add(b["player"])
    p = Play.deal(shoe_cards, [(b["bet_id"], b["amount"]) for b in bets])
    dealt = False
    for e in entries:
        kind, d, seq = e["kind"], e["data"], e["seq"]
        if kind == DEALT:
            if dealt:
                return seq, "blackjack.dealt journaled twice"
            dealt = True
            if d["hand"] != p.shared_hand or d["dealer_up"] != p.dealer_up:
                return seq, "dealt cards are not S[0], S[2] and dealer S[1] of the shoe"
            continue
        if not dealt:
            return seq, f"{kind} before blackjack.dealt"
        if d["step"] != p.step or p.players_done:
            return seq, f"{kind} for step {d['step']} while step {p.step} is open"
        if kind == DECISION:
            try:
                added = p.decide(d["bet_id"], d["action"])
            except Refused as r:
                return seq, f"decision the rules refuse ({r.code})"
            if type(d["amount"]) is not int or d["amount"] != added:
                return seq, f"decision's added stake {d['amount']!r} is not {added}"
        elif kind == CARD:
            res = p.run_step()
            if res.card is None:
                return seq, "a step card shown although no hand took one"
            if d["card"] != res.card:
                return seq, f"step card {d['card']!r} is not S[{p.next - 1}] = {res.card}"
    if not dealt:
        return s_seq, "round settled without blackjack.dealt"
    res = p.run_step()
    if res.card is not None:
        return s_seq, f"settled while step {res.step} had hands taking a card (no blackjack.card)"
    if d_set["outcome"] != p.outcome():
        return s_seq, "outcome (dealer's hand, steps) does not follow from the shoe and the decisions"
    want = p.payouts()
    got: dict[str, int] = {}
    for x in d_set["payouts"]:
        if x["bet_id"] in got:
            return s_seq, f"bet {x['bet_id']} paid twice"
        got[x["bet_id"]] = x["payout"]
    if got != want:
        bad = sorted(set(want) ^ set(got)) or sorted(k for k in want if want[k] != got.get(k))
        return s_seq, f"payouts differ from the blackjack rules (bet {bad[0]})"
    return None


def stakes(bets: list[dict[str, Any]], entries: list[dict[str, Any]]) -> dict[str, int]:
    """Every stake of each bet (main plus each decision's added stake): what a void refunds."""
    out = {b["bet_id"]: b["amount"] for b in bets}
    for e in entries:
        if e["kind"] == DECISION and e["data"]["bet_id"] in out:
            out[e["data"]["bet_id"]] += e["data"]["amount"]
    return out
