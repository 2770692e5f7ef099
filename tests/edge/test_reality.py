"""One timer for every socket's reality-check reminders (edge_agent/api/reality.py)."""
from __future__ import annotations

import asyncio
from typing import Any

from edge_agent.api import reality
from edge_agent.domain.responsible import MINUTE, PlayerRG


class Casino:
    def __init__(self) -> None:
        self.now = 0
        self.players: dict[str, PlayerRG] = {}
        self.state = self

    def clock(self) -> int:
        return self.now

    def player(self, psn: str) -> PlayerRG:
        return self.players.setdefault(psn, PlayerRG())


def test_each_socket_is_reminded_once_per_interval_by_the_sweep_of_its_bucket() -> None:
    c = Casino()
    sent: dict[str, list[dict[str, Any]]] = {}
    rc = reality.RealityChecks(c)
    rc._task = asyncio.Future()  # no loop here: the sweeps are driven by hand  # type: ignore[assignment]
    for i in range(12):
        p = f"p{i}"
        c.player(p).session_start, c.player(p).reality_check_min = 0, 1 + i % 2
        rc.watch(p, sent.setdefault(p, []).append)
    c.player("p0").session_net = -500
    c.now = MINUTE + 1  # due for the 1-minute players only
    for slot in range(reality.SLOTS):
        rc.sweep(slot)
    assert {p for p, got in sent.items() if got} == {f"p{i}" for i in range(0, 12, 2)}
    assert sent["p0"] == [{"type": "reality_check", "elapsed_ms": MINUTE + 1, "net_position": -500, "staked": 0}]
    for slot in range(reality.SLOTS):  # swept again within the interval: nothing new
        rc.sweep(slot)
    assert sum(len(g) for g in sent.values()) == 6
    c.now = 2 * MINUTE
    for slot in range(reality.SLOTS):
        rc.sweep(slot)
    assert len(sent["p0"]) == 2 and len(sent["p1"]) == 1


async def test_the_timer_reminds_within_its_period_and_stops_with_the_sockets(monkeypatch: Any) -> None:
    monkeypatch.setattr(reality, "TICK_S", 0.01)
    c = Casino()
    c.player("a").session_start, c.player("a").reality_check_min = 0, 1
    c.now = MINUTE
    rc = reality.RealityChecks(c)
    got: list[dict[str, Any]] = []
    stop = rc.watch("a", got.append)
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.01)
    assert len(got) == 1
    stop()
    task = rc._task
    assert task is not None
    await asyncio.wait_for(task, 1)  # nobody left to remind: the timer ends
    c.now = 5 * MINUTE
    await asyncio.sleep(0.1)
    assert len(got) == 1
