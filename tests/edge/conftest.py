from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from contract import sync as S
from contract import tokens
from edge_agent.api.app import create_app
from edge_agent.casino import Casino
from edge_agent.config import EdgeConfig
from edge_agent.domain.errors import DomainError

SIGNING_KEY = tokens.new_signing_key()
PUBLIC_PEM = tokens.public_pem(SIGNING_KEY)


def edge_config(tmp: Path, **kw: Any) -> EdgeConfig:
    base: dict[str, Any] = {
        "edge_id": "mt-1", "jurisdiction": "MT", "db_path": tmp / "journal.db", "residency_key_hex": "00" * 32,
        "token_public_key_pem": PUBLIC_PEM,
        "tables": [{"table_id": "roulette-1", "game": "roulette", "betting_window_s": 30, "reveal_s": 0.05,
                 "limits": {"min_bet": 100, "max_bet_per_spot": 50_000, "max_per_round": 80_000}},
                {"table_id": "baccarat-1", "game": "baccarat", "betting_window_s": 30, "reveal_s": 0.05}],
    }
    base.update(kw)
    return EdgeConfig(**base)


def player_token(sub: str, jur: str = "MT") -> str:
    return tokens.issue(SIGNING_KEY, sub, "player", jur)


async def fund(casino: Casino, psn: str, amount: int, ref: str = "d") -> None:
    dep = f"{ref}-{psn[:8]}-{casino.store.seq}"
    await casino.apply_command(S.DepositCredit(id=dep, ts=0, deposit_id=dep, player=psn, amount=amount,
                                               currency="EUR"))


async def bet_when_open(casino: Casino, psn: str, table: str, spot: str, amount: int, **kw: Any) -> dict[str, Any]:
    for _ in range(200):
        try:
            return await casino.bet(psn, table, spot, amount, **kw)
        except DomainError as e:
            if e.code != "betting_closed":
                raise
            await asyncio.sleep(0.02)
    raise AssertionError("no round opened")


@pytest.fixture
async def casino(tmp_path: Path) -> AsyncIterator[Casino]:
    """A casino whose rounds are driven by the test (no table loops)."""
    c = Casino(edge_config(tmp_path))
    await c.start(run_tables=False)
    yield c
    await c.stop()
    c.close()


@pytest.fixture
async def client(casino: Casino) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(casino)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serving(app: Any, ws: Any) -> AsyncIterator[str]:
    """`app` under uvicorn on a free loopback port, with the WebSocket protocol `ws`: host:port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", ws=ws))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def live_server(casino: Casino) -> AsyncIterator[str]:
    """The edge app on a real socket (for WebSocket tests)."""
    async with serving(create_app(casino), "websockets") as where:
        yield where
