"""Double-entry ledger. Every movement is a set of postings summing to zero.

Accounts: `cash:{player}`, `in_play:{player}`, `pending:{player}` (pending withdrawal),
`house`, and `world` (money outside the edge: deposits come from it, payouts go to it).
Player accounts may never go negative; so the sum of all accounts is always zero and
`-world` is exactly the money the edge holds.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

HOUSE = "house"
WORLD = "world"

Posting = tuple[str, int]


def cash(player: str) -> str:
    return f"cash:{player}"


def in_play(player: str) -> str:
    return f"in_play:{player}"


def pending(player: str) -> str:
    return f"pending:{player}"


class LedgerError(Exception):
    pass


class Ledger:
    def __init__(self) -> None:
        self.balances: defaultdict[str, int] = defaultdict(int)

    def balance(self, account: str) -> int:
        return self.balances.get(account, 0)

    def can_post(self, postings: Iterable[Posting]) -> bool:
        """Whether postings keep every player account non-negative (postings may repeat accounts)."""
        delta: dict[str, int] = {}
        for acct, amount in postings:
            delta[acct] = delta.get(acct, 0) + amount
        return all(
            self.balances.get(a, 0) + d >= 0 for a, d in delta.items() if a not in (HOUSE, WORLD)
        )

    def post(self, postings: list[Posting]) -> None:
        if sum(a for _, a in postings) != 0:
            raise LedgerError(f"unbalanced postings {postings}")
        for _, amount in postings:
            if not isinstance(amount, int) or isinstance(amount, bool):
                raise LedgerError("amounts are integer minor units")
        if not self.can_post(postings):
            raise LedgerError(f"postings would make a player account negative: {postings}")
        for acct, amount in postings:
            self.balances[acct] += amount

    def transfer(self, src: str, dst: str, amount: int) -> None:
        """One balanced movement (the bet path's only shape): src -> dst."""
        b = self.balances
        if amount < 0 or (src != HOUSE and src != WORLD and b.get(src, 0) < amount):
            raise LedgerError(f"transfer of {amount} from {src} would make it negative")
        b[src] -= amount
        b[dst] += amount

    def total(self) -> int:
        return sum(self.balances.values())
