"""Sync tests: real nats-server processes on free ports, a real casino, the stream read back."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.js import api

from contract import sync as S
from edge_agent.casino import Casino
from edge_agent.config import EdgeConfig
from edge_agent.domain.errors import DomainError
from edge_agent.sync.streams import ensure_streams
from tests.support.nats import NatsServer

PROFILE = {"display_name": "Alice Example", "email": "alice@example.org", "birth_date": "1990-01-01"}


def edge_config(tmp: Path, url: str | None, **kw: Any) -> EdgeConfig:
    base: dict[str, Any] = {
        "edge_id": "mt-1", "jurisdiction": "MT", "db_path": tmp / "j.db", "residency_key_hex": "00" * 32,
        "tables": [{"table_id": "roulette-1", "game": "roulette", "betting_window_s": 0.3, "reveal_s": 0.05}],
        "nats": {"url": url, "heartbeat_s": 0.5},
    }
    base.update(kw)
    return EdgeConfig(**base)


async def start_casino(cfg: EdgeConfig) -> Casino:
    c = Casino(cfg)
    await c.start()
    return c


async def stop_casino(c: Casino) -> None:
    await c.stop()
    c.close()


async def shutdown(c: Casino, *syncs: Any) -> None:
    """The runtime's order: the casino ends its rounds, sync drains what it can, then close."""
    await c.stop()
    for s in syncs:
        await s.stop()
    c.close()


async def fund(c: Casino, psn: str, amount: int, ref: str) -> None:
    await c.apply_command(S.DepositCredit(id=f"cmd-{ref}", ts=0, deposit_id=ref, player=psn, amount=amount,
                                          currency="EUR"))


async def bet_when_open(c: Casino, psn: str, spot: str = "red", amount: int = 100,
                        table: str = "roulette-1", **kw: Any) -> dict[str, Any]:
    for _ in range(500):
        try:
            return await c.bet(psn, table, spot, amount, **kw)
        except DomainError as e:
            if e.code != "betting_closed":
                raise
            await asyncio.sleep(0.01)
    raise AssertionError("no round opened")


class Bettors:
    """Players betting in a loop (one task each) until `stop()`; `count` is the bets taken."""

    def __init__(self, c: Casino, players: list[str], pause_s: float) -> None:
        self.count = 0
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._play(c, p, pause_s)) for p in players]

    async def _play(self, c: Casino, psn: str, pause_s: float) -> None:
        while not self._stop.is_set():
            await bet_when_open(c, psn, "red", 100)
            self.count += 1
            await asyncio.sleep(pause_s)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def until(pred: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def read_stream(url: str, edge_id: str, **connect: Any) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Every message of the edge's journal subject, in stream order: (SyncedEntry dict, headers)."""
    nc = await nats.connect(url, **connect)
    try:
        js = nc.jetstream()
        subject = S.journal_subject(edge_id)
        cfg = api.ConsumerConfig(filter_subject=subject, ack_policy=api.AckPolicy.NONE,
                                 deliver_policy=api.DeliverPolicy.ALL, inactive_threshold=30.0)
        sub = await js.pull_subscribe(subject, stream=S.JOURNAL_STREAM, config=cfg)
        out: list[tuple[dict[str, Any], dict[str, str]]] = []
        while True:
            try:
                msgs = await sub.fetch(1000, timeout=1.0)
            except TimeoutError:
                break
            for m in msgs:
                out.append((S.SyncedEntry.model_validate_json(m.data).model_dump(), dict(m.headers or {})))
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def create_streams(url: str, **connect: Any) -> None:
    nc = await nats.connect(url, **connect)
    try:
        await ensure_streams(nc.jetstream())
    finally:
        await nc.close()


class TcpProxy:
    """127.0.0.1:port -> target. `cut()` drops every connection and refuses new ones (a hard
    partition), `blackhole()` keeps connections open but forwards nothing (a silent WAN stall),
    `restore()` heals."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.mode = "up"
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            w.close()
            return
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            w.close()
            return
        self._conns |= {w, uw}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    if self.mode == "up":
                        dst.write(data)
                        await dst.drain()
                    # blackhole: swallowed
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(r, uw), pump(ur, w))
        self._conns -= {w, uw}

    def cut(self) -> None:
        self.mode = "cut"
        for w in list(self._conns):
            w.close()

    def blackhole(self) -> None:
        self.mode = "blackhole"

    def restore(self) -> None:
        # connections that swallowed bytes are corrupt streams now: drop them, the client redials
        if self.mode == "blackhole":
            for w in list(self._conns):
                w.close()
        self.mode = "up"

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
def nats_server(tmp_path: Path) -> Any:
    srv = NatsServer(tmp_path / "nats").start()
    yield srv
    srv.stop()


def check_exactly_once(entries: list[dict[str, Any]], head_seq: int, head_hash: str) -> None:
    """Every seq 1..head exactly once, linked by prev/hash, ending at the local head."""
    seqs = [e["seq"] for e in entries]
    assert len(seqs) == len(set(seqs)), "an entry is stored twice"
    assert sorted(seqs) == list(range(1, head_seq + 1))
    chain = sorted(entries, key=lambda e: e["seq"])
    prev = "0" * 64
    for e in chain:
        assert e["prev"] == prev, f"link broken at {e['seq']}"
        prev = e["hash"]
    assert prev == head_hash
