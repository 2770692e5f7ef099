from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contract import sync as S
from contract import tokens
from edge_agent.casino import Casino
from edge_agent.config import EdgeConfig
from edge_agent.domain.errors import DomainError
from edge_agent.regulator.router import regulator_router

KEY = tokens.new_signing_key()
PUB = tokens.public_pem(KEY)


def config(tmp: Path, **kw: Any) -> EdgeConfig:
    base: dict[str, Any] = {
        "edge_id": "mt-1", "jurisdiction": "MT", "db_path": tmp / "j.db", "residency_key_hex": "00" * 32,
        "tables": [{"table_id": "roulette-1", "game": "roulette", "betting_window_s": 0.2, "reveal_s": 0.05}]}
    base.update(kw)
    return EdgeConfig(**base)


def token(role: str = "regulator", jur: str = "MT", sub: str = "mga-inspector-1") -> str:
    return tokens.issue(KEY, sub, role, jur)  # type: ignore[arg-type]


def auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


async def fund(c: Casino, psn: str, amount: int) -> None:
    dep = f"dep-{psn[:8]}-{c.store.seq}"
    await c.apply_command(S.DepositCredit(id=dep, ts=0, deposit_id=dep, player=psn, amount=amount, currency="EUR"))


async def bet(c: Casino, psn: str, spot: str, amount: int, table: str = "roulette-1") -> dict[str, Any]:
    for _ in range(500):
        try:
            return await c.bet(psn, table, spot, amount)
        except DomainError as e:
            if e.code != "betting_closed":
                raise
            await asyncio.sleep(0.01)
    raise AssertionError("no round opened")


async def wait_settled(c: Casino, rounds: int, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        n = c.store.query("SELECT COUNT(*) FROM rounds")[0][0]
        if n >= rounds:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("rounds did not finish")


async def populate(c: Casino) -> dict[str, str]:
    """Two players with personal data, bets over a few rounds, a limit, a break, a void, KYC."""
    alice = c.ensure_player("alice", {"display_name": "Alice Abela", "email": "alice@example.mt",
                                      "birth_date": "1990-01-02", "address": "1 Triq il-Kbira, Valletta"})
    bob = c.ensure_player("bob", {"display_name": "Bob Borg", "email": "bob@example.mt"})
    await fund(c, alice, 300_000)  # EUR 3,000: crosses the CDD threshold
    await fund(c, bob, 50_000)
    c.set_limit(alice, "deposit", "24h", 400_000)
    c.set_limit(alice, "deposit", "24h", 350_000)
    await c.apply_command(S.KycResult(id="kyc-1", ts=0, player=bob, status="edd_required", reference="kyc-bob"))
    for spot in ("red", "black", "straight:7"):
        await bet(c, alice, spot, 500)
        await bet(c, bob, "odd", 300)
        await wait_settled(c, c.store.query("SELECT COUNT(*) FROM rounds")[0][0] + 1)
    t = c.state.tables["roulette-1"]
    while True:
        receipt = await bet(c, bob, "even", 200)
        r = t.round
        if r is not None and r.n == receipt["n"] and r.status == "open":
            # No await between this check and the void inside set_table_enabled: the bet is in it.
            await c.set_table_enabled("roulette-1", False, "dealer change", "op-1")  # voids the open round
            break
        await wait_settled(c, c.store.query("SELECT COUNT(*) FROM rounds")[0][0] + 1)
    await c.set_table_enabled("roulette-1", True, "dealer back", "op-1")
    c.exclude(alice, "break", "1d")
    await c.store.durable(c.store.seq)
    return {"alice": alice, "bob": bob}


@pytest.fixture
async def casino(tmp_path: Path) -> AsyncIterator[Casino]:
    c = Casino(config(tmp_path))
    await c.start()
    yield c
    await c.stop()
    c.close()


@pytest.fixture
async def populated(casino: Casino) -> dict[str, str]:
    return await populate(casino)


@pytest.fixture
async def client(casino: Casino) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(regulator_router(casino, PUB))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as cl:
        yield cl
