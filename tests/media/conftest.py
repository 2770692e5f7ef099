"""Fixtures for the media tests: free ports, a studio process, an edge (MediaService + uvicorn)."""
from __future__ import annotations

import asyncio
import ctypes
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from edge_agent.media.config import MediaConfig, TableFeed
from edge_agent.media.service import MediaService
from edge_agent.media.whep import build_router


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


@pytest.fixture
def studio() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `python -m edge_agent.studio` (small picture to spare the shared CPU); killed at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(table_id: str, srt_port: int, *extra: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.studio", table_id, f"srt://127.0.0.1:{srt_port}",
             "--width", "640", "--height", "360", *extra],
            preexec_fn=_die_with_parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,  # noqa: PLW1509
        )
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(3)
            except subprocess.TimeoutExpired:
                p.kill()


@dataclass
class Edge:
    service: MediaService
    base: str
    srt_port: int
    ups: list[str] = field(default_factory=list)
    downs: list[tuple[str, str]] = field(default_factory=list)

    async def wait(self, cond: Callable[[], bool], timeout: float = 20.0) -> bool:
        for _ in range(int(timeout / 0.05)):
            if cond():
                return True
            await asyncio.sleep(0.05)
        return cond()


def small_ladder() -> list[dict[str, object]]:
    return [
        {"name": "360p", "width": 640, "height": 360, "bitrate_kbps": 800},
        {"name": "180p", "width": 320, "height": 180, "bitrate_kbps": 250},
        {"name": "90p", "width": 160, "height": 90, "bitrate_kbps": 100},
    ]


async def start_edge(start: bool = True, **overrides: object) -> tuple[Edge, uvicorn.Server, asyncio.Task[None]]:
    srt_port = free_port(socket.SOCK_DGRAM)
    ups: list[str] = []
    downs: list[tuple[str, str]] = []

    async def on_up(table_id: str) -> None:
        ups.append(table_id)

    async def on_down(table_id: str, reason: str) -> None:
        downs.append((table_id, reason))

    cfg_kwargs: dict[str, object] = {
        "tables": [TableFeed(table_id="t1", srt_port=srt_port, srt_latency_ms=40)],
        "ladder": small_ladder(), "announce_addresses": ["127.0.0.1"], "start_rung": 0, "audio": True,
    }
    cfg_kwargs.update(overrides)
    token_key = cfg_kwargs.pop("token_public_key_pem", None)
    jurisdiction = cfg_kwargs.pop("jurisdiction", None)
    policy = cfg_kwargs.pop("policy", None)
    service = MediaService(MediaConfig(**cfg_kwargs), on_feed_up=on_up, on_feed_down=on_down,  # type: ignore[arg-type]
                           token_public_key_pem=token_key, jurisdiction=jurisdiction, policy=policy)  # type: ignore[arg-type]
    app = FastAPI()
    app.include_router(build_router(service))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    if start:
        await service.start()
    return Edge(service, f"http://127.0.0.1:{port}", srt_port, ups, downs), server, task


@pytest.fixture
async def edge_factory() -> AsyncIterator[Callable[..., asyncio.Future[Edge]]]:
    made: list[tuple[Edge, uvicorn.Server, asyncio.Task[None], bool]] = []

    async def make(start: bool = True, **overrides: object) -> Edge:
        e, server, task = await start_edge(start, **overrides)
        made.append((e, server, task, start))
        return e

    yield make  # type: ignore[misc]
    for e, server, task, started in made:
        if started:
            await e.service.stop()
        server.should_exit = True
        await task


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as c:
        yield c
