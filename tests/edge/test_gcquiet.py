"""The collector waits through a round (gcquiet): young collections that walk the round's live
objects stop the event loop while decisions wait for their acknowledgements. Inside a stretch no
young collection runs below QUIET_GEN0 new objects; at its end the thresholds come back and the
collection then due runs and frees the cyclic garbage made meanwhile."""
from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent import gcquiet
from edge_agent.casino import Casino
from tests.edge.test_blackjack import TABLE, Round, bj_config, players, stack


@pytest.fixture
def thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


class Collections:
    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []  # (generation, collected)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop":
            self.seen.append((info["generation"], info["collected"]))

    def __enter__(self) -> Collections:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_no_young_collection_inside_a_stretch_and_the_due_one_runs_after(thresholds: None) -> None:
    assert gc.isenabled()
    with Collections() as c:
        with gcquiet.quiet():
            assert gcquiet.active() and gc.get_threshold() == (gcquiet.QUIET_GEN0, 10, 10)
            for _ in range(20_000):  # ~28 young collections' worth at the threshold of 700
                Cycle()
            assert c.seen == []
        assert not gcquiet.active() and gc.get_threshold() == (700, 10, 10)
        for _ in range(10):  # the next allocations: the collection due runs now
            Cycle()
    assert c.seen and sum(n for _, n in c.seen) >= 20_000  # every cycle made inside was freed


def test_nested_stretches_restore_at_the_outermost_end(thresholds: None) -> None:
    with gcquiet.quiet():
        with gcquiet.quiet():
            pass
        assert gcquiet.active() and gc.get_threshold()[0] == gcquiet.QUIET_GEN0
    assert not gcquiet.active() and gc.get_threshold() == (700, 10, 10)


def test_a_long_stretch_still_collects_at_the_bound(thresholds: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcquiet, "QUIET_GEN0", 5_000)
    with Collections() as c, gcquiet.quiet():
        for _ in range(20_000):
            Cycle()
    assert 2 <= len([g for g, _ in c.seen if g == 0]) <= 6  # about one per 5,000, not per 700


def test_a_threshold_of_zero_stays_zero() -> None:
    saved = gc.get_threshold()
    try:
        gc.set_threshold(0)
        with gcquiet.quiet():
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*saved)


async def test_a_blackjack_round_runs_inside_one_stretch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From the deal through every decision to the settlement: one stretch, ended after it."""
    stack(monkeypatch, ["5S", "9H", "6D", "TC", "2D", "7S", "TH"])
    c = Casino(bj_config(tmp_path))
    await c.start(run_tables=False)
    try:
        a, b = await players(c, "a", "b")
        rnd = Round(c)
        await rnd.start({a: 100, b: 100})
        assert gcquiet.active()  # the players' phase is under way
        await rnd.act(a, "hit", 1)
        assert gcquiet.active()
        await rnd.act(b, "stand", 1)
        e = await rnd.finish()
        assert e["kind"] == "round.settled"
        assert not gcquiet.active()
    finally:
        await c.stop()
        c.close()


async def test_the_table_loop_holds_the_stretch_through_the_reveal(tmp_path: Path) -> None:
    """Run by the table loop, the stretch lasts until the result has been shown (reveal_s), so
    that the collection put off runs before the next round opens, not inside a broadcast."""
    cfg = bj_config(tmp_path)
    cfg.tables[0].betting_window_s = 0.2
    cfg.tables[0].reveal_s = 1.0
    c = Casino(cfg)
    seen: list[tuple[str, bool]] = []
    sched = c.rounds
    settle = sched.settle_round

    async def settle_and_watch(table_id: str) -> Any:
        e = await settle(table_id)
        seen.append(("settled", gcquiet.active()))
        return e

    sched.settle_round = settle_and_watch  # type: ignore[method-assign]
    events = c.events.subscribe(f"table:{TABLE}")
    await c.start(run_tables=True)
    try:
        while True:  # a round with no bets settles at once; then the reveal
            ev = await asyncio.wait_for(events.get(), 10)
            if ev and ev.get("type") == "round.settled":
                break
        assert seen == [("settled", True)]  # still inside: the reveal has not ended
        while True:
            ev = await asyncio.wait_for(events.get(), 10)
            if ev and ev.get("type") == "round.opened":
                break
        assert not gcquiet.active()  # the next round opened outside any stretch
    finally:
        await c.stop()
        c.close()
