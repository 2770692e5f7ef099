"""Hostile WebSocket frames (issue 15): whatever a player's socket sends — binary, broken JSON,
any JSON value in any field of any message type — the edge answers or ignores it, never drops
the connection, and the journal still verifies."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract import sync as S
from contract.bundle import verify_bundle
from contract.journal import split_records
from edge_agent.api.app import create_app
from edge_agent.audit.export import export_bundle
from edge_agent.casino import Casino
from tests.edge.conftest import edge_config, player_token
from tests.support.live import serve

TRICKY = st.sampled_from(["red", "red\n", "straight:7\u2028", "roulette-1", "baccarat-1", "", "\x00", "\u0085"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20) | TRICKY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8) | TRICKY, inner, max_size=3),
    max_leaves=10)
TYPES = st.sampled_from(["bet", "bets", "subscribe", "ping", "wallet", "act", "reality_check.ack", "nope"])
message = st.fixed_dictionaries(
    {"type": TYPES | json_values},
    optional={"req": json_values, "table_id": TRICKY | json_values, "spot": TRICKY | json_values,
              "amount": st.integers(min_value=-5, max_value=10**20) | json_values, "player_seed": json_values,
              "bets": st.lists(st.dictionaries(st.sampled_from(["table_id", "spot", "amount"]), json_values),
                               max_size=3) | json_values,
              "t": json_values, "action": json_values})
frames = st.one_of(message.map(lambda m: json.dumps(m)), st.binary(max_size=64), st.text(max_size=64),
                   json_values.map(json.dumps))


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("wsfuzz")

    async def setup():  # type: ignore[no-untyped-def]
        casino = Casino(edge_config(tmp))
        await casino.start()
        psn = casino.ensure_player("fuzz")
        await casino.apply_command(S.DepositCredit(id="f", ts=0, deposit_id="f", player=psn, amount=10**9,
                                                   currency="EUR"))

        async def teardown() -> None:
            await casino.stop()
            casino.close()
        return create_app(casino), teardown

    with serve(setup) as url:
        yield url.replace("http://", "ws://"), tmp / "journal.db"


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(frames, min_size=1, max_size=8))
def test_no_frame_drops_the_connection(edge: tuple[str, Path], batch: list[str | bytes]) -> None:
    url, _ = edge

    async def run() -> None:
        async with websockets.connect(f"{url}/v1/ws?token={player_token('fuzz')}") as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            for frame in batch:
                await ws.send(frame)
            await ws.send(json.dumps({"type": "ping", "t": "end"}))
            while True:  # everything before it was handled: the socket is still serving
                m = json.loads(await asyncio.wait_for(ws.recv(), 20))
                if m.get("type") == "pong" and m.get("t") == "end":
                    return
                assert m.get("error", {}).get("code") != "internal_error", m

    asyncio.run(run())


def test_after_the_fuzz_the_journal_verifies(edge: tuple[str, Path], tmp_path: Path) -> None:
    _, db = edge
    export_bundle(db, tmp_path / "b")
    assert verify_bundle(tmp_path / "b").ok
    assert split_records((tmp_path / "b" / "journal.jsonl").read_text())
