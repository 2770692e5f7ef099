"""Control-plane fixtures: a real nats-server per test, SQLite and PostgreSQL databases, a
simulated edge that publishes SyncedEntry messages, and HTTP clients with tokens."""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from contract import journal as J
from contract import sync as S
from contract import tokens
from control_plane.config import ControlPlaneConfig
from control_plane.runtime import ControlPlane
from tests.support.nats import NatsServer

# Generated per run, as a real deployment's must be (the service refuses the example value).
BOOTSTRAP = secrets.token_hex(16)

# Admin connection used to create one throw-away database per test (override for another server).
PG_ADMIN = os.environ.get("CONTROL_PLANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=2):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server to test against"
        return f"PostgreSQL at {PG_ADMIN} does not answer ({exc.__class__.__name__}: {exc})"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cp.db'}"
        return
    reason = _pg_available()
    if reason:
        pytest.skip(reason)
    import psycopg

    name = f"controlplane_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    srv = NatsServer(tmp_path / "nats").start()
    try:
        yield srv
    finally:
        srv.stop()


def cp_config(tmp_path: Path, db_url: str, nats_url: str | None, **kw: Any) -> ControlPlaneConfig:
    base: dict[str, Any] = {
        "database_url": db_url, "data_dir": tmp_path / "cpdata",
        "token_signing_key_path": tmp_path / "cpdata" / "token.pem",
        "bootstrap_secret": BOOTSTRAP, "processor_interval_s": 0.05, "heartbeat_timeout_s": 60,
        "nats": {"url": nats_url},
        "kyc": {"vendor_delay_s": 0.05},
        "rails": {"crypto": {"confirmations": 2, "block_interval_s": 0.05}},
    }
    for k, v in kw.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = {**base[k], **v}
        else:
            base[k] = v
    return ControlPlaneConfig.model_validate(base)


MakeCp = Callable[..., Awaitable[ControlPlane]]


@pytest.fixture
async def make_cp(tmp_path: Path, db_url: str) -> AsyncIterator[MakeCp]:
    """Start control planes on one database (and one set of rail/PSP books); all stopped at the end."""
    started: list[ControlPlane] = []

    async def _make(nats_url: str | None = None, **kw: Any) -> ControlPlane:
        cp = ControlPlane(cp_config(tmp_path, db_url, nats_url, **kw))
        await cp.start()
        started.append(cp)
        return cp

    yield _make
    for cp in started:
        if cp._started:
            await cp.stop()
        cp.close_adapters()


class EdgeSim:
    """The edge's side of the wire: a hash-chained journal published as SyncedEntry messages."""

    def __init__(self, edge_id: str) -> None:
        self.edge_id = edge_id
        self.entries: list[dict[str, Any]] = []

    def add(self, kind: str, data: dict[str, Any], ts: int | None = None) -> dict[str, Any]:
        prev = self.entries[-1]["hash"] if self.entries else J.GENESIS_PREV
        e = J.make_entry(len(self.entries) + 1, ts if ts is not None else int(time.time() * 1000), kind, data, prev)
        self.entries.append(e)
        return e

    async def publish(self, js: Any, entry: dict[str, Any], msg_id: str | None = None) -> Any:
        body = json.dumps(entry).encode()
        return await js.publish(S.journal_subject(self.edge_id), body,
                                headers={"Nats-Msg-Id": msg_id or S.journal_msg_id(self.edge_id, entry["seq"])})

    async def publish_all(self, js: Any, entries: list[dict[str, Any]] | None = None, suffix: str = "") -> None:
        for e in entries if entries is not None else self.entries:
            await self.publish(js, e, S.journal_msg_id(self.edge_id, e["seq"]) + suffix)


async def wait_for(pred: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll until pred() is truthy. The timeout only stops a hung test; it asserts no speed."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Any]:
    conn = await nats.connect(nats_server.url)
    yield conn
    await conn.close()


def token(cp: ControlPlane, sub: str, role: str, jur: str = "MT") -> str:
    return tokens.issue(cp.signing_key, sub, role, jur)  # type: ignore[arg-type]


def client(cp: ControlPlane, bearer: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=cp.app), base_url="http://cp", headers=headers)


def operator(cp: ControlPlane) -> httpx.AsyncClient:
    return client(cp, token(cp, "ops", "operator", "*"))


async def commands_on(nc: Any, edge_id: str) -> list[dict[str, Any]]:
    """Every command in the command stream for an edge (what the edge would receive)."""
    js = nc.jetstream()
    try:
        info = await js.stream_info(S.COMMAND_STREAM)
    except Exception:  # noqa: BLE001 - no stream yet: no commands
        return []
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            m = await js.get_msg(S.COMMAND_STREAM, seq)
        except Exception:  # noqa: BLE001, S112 - deleted or missing sequence
            continue
        if m.subject == S.command_subject(edge_id):
            out.append(json.loads(m.data))
    return out
