"""Offline verification of journal entries: hash chain, fairness of every round, payouts.

Used by `edge-agent verify`, by the control plane's audit, and by tests. The first problem
found is reported with the seq of the entry that carries it.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from contract import blackjack as BJ
from contract import fairness
from contract import journal as J


@dataclass
class Problem:
    seq: int | None
    reason: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.reason}"


@dataclass
class Report:
    entries: int = 0
    rounds_verified: int = 0
    rounds_voided: int = 0
    rounds_partial: int = 0  # settled rounds whose opening lies before the checked range
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_seq(self) -> int | None:
        return self.problems[0].seq if self.problems else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "rounds_verified": self.rounds_verified,
            "rounds_voided": self.rounds_voided,
            "rounds_partial": self.rounds_partial,
            "first_bad_seq": self.first_bad_seq,
            "problems": [{"seq": p.seq, "reason": p.reason} for p in self.problems],
        }


@dataclass
class _Round:
    game: str
    bets: list[dict[str, Any]] = field(default_factory=list)
    plays: list[dict[str, Any]] = field(default_factory=list)  # blackjack.* entries, journal order


def verify_entries(
    entries: list[dict[str, Any]], *, first_seq: int = 1, anchor: str = J.GENESIS_PREV
) -> Report:
    report = Report(entries=len(entries))
    brk = J.check_chain(entries, first_seq=first_seq, anchor=anchor)
    if brk is not None:
        report.problems.append(Problem(brk.seq, brk.reason))
        # Rounds after a chain break are not trustworthy; check only what precedes it.
        entries = entries[: brk.line - 1]
    _check_rounds(entries, report)
    return report


def _check_rounds(entries: Iterable[dict[str, Any]], report: Report) -> None:
    chains: dict[tuple[str, str], dict[str, Any]] = {}
    rounds: dict[tuple[str, str, int], _Round] = {}
    for e in entries:
        kind, d, seq = e["kind"], e["data"], e["seq"]
        try:
            if kind == J.FAIRNESS_CHAIN:
                chains[(d["table_id"], d["chain_id"])] = d
            elif kind == J.ROUND_OPENED:
                key = (d["table_id"], d["chain_id"], d["n"])
                if key in rounds:
                    report.problems.append(Problem(seq, "round opened twice"))
                    continue
                rounds[key] = _Round(game=d["game"])
            elif kind == J.BET_PLACED:
                key = (d["table_id"], d["chain_id"], d["n"])
                r = rounds.get(key)
                if r is None:
                    continue  # round opened before the range: its settlement counts as partial
                if not isinstance(d["amount"], int) or d["amount"] <= 0:
                    report.problems.append(Problem(seq, "bet amount is not a positive integer"))
                    continue
                if not (d["spot"] == BJ.SPOT if r.game == BJ.BLACKJACK else fairness.valid_spot(r.game, d["spot"])):
                    report.problems.append(Problem(seq, f"unknown spot {d['spot']!r}"))
                    continue
                r.bets.append(d)
            elif kind in BJ.KINDS:
                r = rounds.get((d["table_id"], d["chain_id"], d["n"]))
                if r is not None:
                    r.plays.append(e)
            elif kind == J.ROUND_SETTLED:
                _check_settled(seq, d, chains, rounds, report)
            elif kind == J.ROUND_VOIDED:
                _check_voided(seq, d, rounds, report)
        except (KeyError, TypeError, ValueError) as exc:
            report.problems.append(Problem(seq, f"malformed {kind} entry: {exc!r}"))


def _check_settled(seq: int, d: dict[str, Any], chains: dict, rounds: dict, report: Report) -> None:
    key = (d["table_id"], d["chain_id"], d["n"])
    r = rounds.pop(key, None)
    chain = chains.get((d["table_id"], d["chain_id"]))
    if r is None or chain is None:
        report.rounds_partial += 1
        return
    n = d["n"]
    if not 1 <= n <= chain["length"]:
        report.problems.append(Problem(seq, "round number outside the committed chain"))
        return
    if not fairness.seed_matches_commitment(d["server_seed"], n, chain["commitment"]):
        report.problems.append(Problem(seq, "server seed does not hash to the chain commitment"))
        return
    cs = fairness.client_seed((b["bet_id"], b["player_seed"]) for b in r.bets)
    if cs != d["client_seed"]:
        report.problems.append(Problem(seq, "client seed does not match the round's bets"))
        return
    if r.game == BJ.BLACKJACK or d["game"] == BJ.BLACKJACK:
        if d["game"] != r.game:
            report.problems.append(Problem(seq, "outcome does not follow from the seeds"))
            return
        shoe = BJ.shoe(bytes.fromhex(d["server_seed"]), cs, n)
        bad = BJ.check_round(shoe, r.bets, r.plays, {"seq": seq, "data": d})
        if bad is not None:
            report.problems.append(Problem(*bad))
            return
        report.rounds_verified += 1
        return
    expected = fairness.outcome(d["game"], bytes.fromhex(d["server_seed"]), cs, n)
    if d["game"] != r.game or expected != d["outcome"]:
        report.problems.append(Problem(seq, "outcome does not follow from the seeds"))
        return
    want = {b["bet_id"]: fairness.payout(r.game, b["spot"], b["amount"], expected) for b in r.bets}
    got: dict[str, int] = {}
    for p in d["payouts"]:
        if p["bet_id"] in got:
            report.problems.append(Problem(seq, f"bet {p['bet_id']} paid twice"))
            return
        got[p["bet_id"]] = p["payout"]
    if got != want:
        bad = sorted(set(want) ^ set(got)) or sorted(k for k in want if want[k] != got.get(k))
        report.problems.append(Problem(seq, f"payouts differ from the paytable (bet {bad[0]})"))
        return
    report.rounds_verified += 1


def _check_voided(seq: int, d: dict[str, Any], rounds: dict, report: Report) -> None:
    key = (d["table_id"], d["chain_id"], d["n"])
    r = rounds.pop(key, None)
    if r is None:
        report.rounds_partial += 1
        return
    want = BJ.stakes(r.bets, r.plays)  # main stakes, plus blackjack's doubles and splits
    got = {x["bet_id"]: x["amount"] for x in d["refunds"]}
    if want != got:
        report.problems.append(Problem(seq, "refunds of a voided round differ from its stakes"))
        return
    report.rounds_voided += 1
