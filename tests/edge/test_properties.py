"""Properties (issue 15): any bet the edge accepts settles; any journal content, whatever
Unicode its strings hold and whatever integers within the bounds, exports and verifies byte for
byte with `edge-agent verify`."""
from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from contract import fairness
from contract import journal as J
from contract.bounds import INT64_MAX, INT64_MIN, MAX_MONEY
from contract.bundle import JOURNAL_FILE
from edge_agent.audit.export import export_bundle
from edge_agent.casino import Casino
from edge_agent.cli import app as cli
from edge_agent.domain.errors import DomainError
from edge_agent.journal.store import JournalStore
from tests.edge.conftest import edge_config, fund

TABLES = ("roulette-1", "baccarat-1")
SPOTS = sorted(fairness.ROULETTE_SPOTS | fairness.BACCARAT_SPOTS)
TRICKY = ["\n", "\r", " ", "\u2028", "\u2029", "\u0085", "\x00", "\t", "0"]
# Text that leans on what broke before: line and paragraph separators, NEL, controls.
texts = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(TRICKY), max_size=40)

valid_spots = st.sampled_from(SPOTS)
hostile_spots = st.one_of(texts,
                          st.builds(lambda s, t, front: t + s if front else s + t, st.sampled_from(SPOTS),
                                    st.sampled_from(TRICKY), st.booleans()),
                          st.integers(), st.none(), st.lists(st.sampled_from(SPOTS), max_size=2))
valid_amounts = st.integers(min_value=100, max_value=100_000)
hostile_amounts = st.one_of(st.integers(min_value=-10, max_value=200_000),
                            st.sampled_from([1, 99, 100, MAX_MONEY, MAX_MONEY + 1, INT64_MAX, INT64_MAX + 1, 10**30]),
                            st.booleans(), st.floats(allow_nan=False), st.text(max_size=5))
# Mostly plausible bets (so rounds have something to settle), one in three hostile.
spots = st.integers(0, 2).flatmap(lambda k: valid_spots if k else hostile_spots)
amounts = st.integers(0, 2).flatmap(lambda k: valid_amounts if k else hostile_amounts)
bets = st.lists(st.tuples(st.sampled_from(TABLES), spots, amounts, texts), min_size=1, max_size=6)
ACCEPTED: list[str] = []


class _Edge:
    """One casino for all examples (starting one per example would dominate the run)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="prop-edge-"))
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.casino = Casino(edge_config(self.dir, tables=[
            {"table_id": "roulette-1", "game": "roulette", "betting_window_s": 30, "reveal_s": 0,
             "limits": {"min_bet": 1, "max_bet_per_spot": 10**12, "max_per_round": 10**13}},
            {"table_id": "baccarat-1", "game": "baccarat", "betting_window_s": 30, "reveal_s": 0}]))
        self.loop.run_until_complete(self.casino.start(run_tables=False))
        self.psn = self.casino.ensure_player("prop-player")
        self.loop.run_until_complete(fund(self.casino, self.psn, 10**14))


_EDGE: _Edge | None = None


def edge() -> _Edge:
    global _EDGE
    if _EDGE is None:
        _EDGE = _Edge()
    return _EDGE


@settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(bets)
def test_any_accepted_bet_settles(placed: list[tuple[str, Any, Any, str]]) -> None:
    e = edge()
    c = e.casino
    for t in TABLES:
        if c.state.tables[t].round is None:
            c.open_round(t)
    accepted: dict[str, str] = {}
    for table, spot, amount, seed in placed:
        try:
            receipt = e.loop.run_until_complete(c.bet(e.psn, table, spot, amount, player_seed=seed[:64]))
        except DomainError:
            continue
        accepted[receipt["bet_id"]] = table
        ACCEPTED.append(receipt["spot"])
        assert fairness.valid_spot(c.state.tables[table].spec.game, receipt["spot"])
    for t in TABLES:
        settled = e.loop.run_until_complete(c.settle_round(t))
        assert settled["kind"] == J.ROUND_SETTLED  # not voided: the data was good
        assert c.state.tables[t].round is None
        paid = {p["bet_id"] for p in settled["data"]["payouts"]}
        assert {b for b, tb in accepted.items() if tb == t} <= paid


def test_after_the_property_every_round_verifies(tmp_path: Path) -> None:
    e = edge()
    assert len(ACCEPTED) >= 50 and len(set(ACCEPTED)) >= 10  # the property saw real bets
    export_bundle(e.casino.store.path, tmp_path / "b")
    res = CliRunner().invoke(cli, ["verify", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output


# --- any journal content exports and verifies byte-exactly -------------------------------------------

ints = st.one_of(st.integers(min_value=INT64_MIN, max_value=INT64_MAX),
                 st.sampled_from([INT64_MIN, INT64_MAX, INT64_MIN + 1, INT64_MAX - 1, 0, -1]))
values = st.recursive(st.none() | st.booleans() | ints | texts,
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
                      max_leaves=12)
entries = st.lists(st.tuples(texts.map(lambda s: "x." + s), st.dictionaries(texts, values, max_size=5)),
                   min_size=1, max_size=8)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(entries=entries, seed=texts, reason=texts, method=texts)
def test_any_journal_content_exports_and_verifies_byte_exactly(entries: list[tuple[str, dict[str, Any]]],
                                                               seed: str, reason: str, method: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        loop = asyncio.new_event_loop()
        try:
            c = Casino(edge_config(Path(d)))
            loop.run_until_complete(c.start(run_tables=False))
            psn = c.ensure_player("p")
            loop.run_until_complete(fund(c, psn, 10**9))
            c.request_deposit(psn, 100, method)  # free text the player chose
            c.open_round("roulette-1")
            loop.run_until_complete(c.bet(psn, "roulette-1", "red", 100, player_seed=seed[:64]))
            loop.run_until_complete(c.settle_round("roulette-1"))
            c.open_round("roulette-1")
            loop.run_until_complete(c.bet(psn, "roulette-1", "black", 100, player_seed=seed[::-1][:64]))
            loop.run_until_complete(c.void_round("roulette-1", reason[:64], "op"))
            for kind, data in entries:
                c.store.append(kind, data)
            loop.run_until_complete(c.store.durable(c.store.seq))
            want = c.store.read(1, c.store.seq)
            loop.run_until_complete(c.stop())
            c.close()
        finally:
            loop.close()
        out = Path(d) / "bundle"
        export_bundle(Path(d) / "journal.db", out)
        raw = (out / JOURNAL_FILE).read_bytes()
        assert raw == b"".join((J.entry_line(e) + "\n").encode() for e in want)  # byte for byte
        assert [json.loads(r) for r in J.split_records(raw.decode())] == want
        res = CliRunner().invoke(cli, ["verify", str(out)])
        assert res.exit_code == 0, res.output


def test_store_read_is_what_was_appended() -> None:
    # The byte-exact property compares against store.read: it must be the appended data itself.
    with tempfile.TemporaryDirectory() as d:
        s = JournalStore(Path(d) / "j.db")
        data = {"s": "a\u2028b\u0085", "n": INT64_MIN, "m": INT64_MAX}
        e = s.append("x.k", data)
        s.close()
        s2 = JournalStore(Path(d) / "j.db")
        assert s2.read(1, 1)[0] == e
