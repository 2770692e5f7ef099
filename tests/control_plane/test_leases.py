"""Journal and money-step leases on the real PostgreSQL: an even share per replica, one holder per
name, everything freed when a replica's session ends (what kill -9 does), SQLite always granted."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine

from control_plane.adapters.db import leases as L
from tests.support.cloud import pg_available, pg_database

EDGES = ["mt-1", "gr-1", "de-1", "es-1", "it-1"]


@pytest.fixture
def engine() -> Any:
    reason = pg_available()
    if reason:
        pytest.skip(reason)
    with pg_database("leases") as url:
        e = create_engine(url)
        yield e
        e.dispose()


def settle(replicas: list[L.Leases], rounds: int = 12) -> dict[str, set[str]]:
    for _ in range(rounds):
        for r in replicas:
            _, release = L.rebalance(r, EDGES)
            for edge in release:
                r.release(L.EDGE, edge)
    return {r.replica: r.held(L.EDGE) for r in replicas}


@pytest.mark.postgres
def test_edges_are_shared_evenly_and_never_twice(engine) -> None:
    a = L.Leases(engine, "a")
    assert settle([a]) == {"a": set(EDGES)}  # alone: every edge
    b = L.Leases(engine, "b")
    held = settle([a, b])
    assert sorted(len(h) for h in held.values()) == [2, 3]  # a newcomer gets its share back
    assert held["a"].isdisjoint(held["b"]) and held["a"] | held["b"] == set(EDGES)
    c = L.Leases(engine, "c")
    held = settle([a, b, c])
    assert sorted(len(h) for h in held.values()) == [1, 2, 2]
    assert set().union(*held.values()) == set(EDGES) and sum(map(len, held.values())) == len(EDGES)
    b.close()  # the session ends (as when its process is killed): its edges are free at once
    held = settle([a, c])
    assert set().union(*held.values()) == set(EDGES) and sorted(len(h) for h in held.values()) == [2, 3]
    for r in (a, c):
        r.close()


@pytest.mark.postgres
def test_a_money_step_has_one_holder(engine) -> None:
    a, b = L.Leases(engine, "a"), L.Leases(engine, "b")
    with a.hold(L.WITHDRAWAL, "w1") as mine_a:
        with b.hold(L.WITHDRAWAL, "w1") as mine_b:
            assert mine_a and not mine_b
        assert b.try_acquire(L.WITHDRAWAL, "w2")  # another withdrawal is free
    assert b.try_acquire(L.WITHDRAWAL, "w1")  # released on leaving the block
    assert L.Leases(engine, "c").live_replicas() == 3
    a.close()
    b.close()


def test_sqlite_is_one_replica_and_grants_everything(tmp_path) -> None:
    e = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    a, b = L.Leases(e, "a"), L.Leases(e, "b")
    assert a.try_acquire(L.EDGE, "mt-1") and b.try_acquire(L.EDGE, "mt-1") and a.live_replicas() == 1
    assert L.rebalance(a, EDGES)[0] == set(EDGES) - {"mt-1"}


def test_share_and_key() -> None:
    assert [L.share(n, 2) for n in (0, 1, 2, 3)] == [0, 1, 1, 2]
    assert L.share(5, 0) == 5
    assert -(2**31) <= L.lock_key("mt-1") < 2**31 and L.lock_key("mt-1") == L.lock_key("mt-1")
    assert sorted(L.preference("a", EDGES)) == sorted(EDGES)  # an order, nothing dropped
