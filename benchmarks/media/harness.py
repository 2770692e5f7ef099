"""Shared set-up for the media benchmarks: an edge (MediaService behind uvicorn) and a studio."""
from __future__ import annotations

import asyncio
import ctypes
import platform
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI

from edge_agent.media.config import MediaConfig, Rung, TableFeed
from edge_agent.media.service import MediaService
from edge_agent.media.whep import build_router


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


@dataclass
class BenchEdge:
    service: MediaService
    base: str
    srt_port: int
    server: uvicorn.Server
    task: asyncio.Task[None]
    studio: subprocess.Popen[bytes] | None = None
    events: list[tuple[str, Any]] = field(default_factory=list)

    async def stop(self) -> None:
        if self.studio is not None and self.studio.poll() is None:
            self.studio.terminate()
            self.studio.wait(5)
        await self.service.stop()
        self.server.should_exit = True
        await self.task


async def start_edge(*, latency_ms: int = 40, ladder: list[Rung] | None = None, studio_size: tuple[int, int] = (1280, 720),
                     start_rung: int = 0, capacity: int = 5000, audio: bool = True,
                     abr: bool = True, workers: int = 0) -> BenchEdge:
    srt_port = free_port(socket.SOCK_DGRAM)
    events: list[tuple[str, Any]] = []

    async def up(t: str) -> None:
        events.append(("up", t))

    async def down(t: str, r: str) -> None:
        events.append(("down", (t, r)))

    kw: dict[str, Any] = {}
    if ladder is not None:
        kw["ladder"] = ladder
    cfg = MediaConfig(tables=[TableFeed(table_id="t1", srt_port=srt_port, srt_latency_ms=latency_ms)],
                      announce_addresses=["127.0.0.1"], start_rung=start_rung, viewer_capacity=capacity,
                      audio=audio, abr_enabled=abr, workers=workers, **kw)
    svc = MediaService(cfg, on_feed_up=up, on_feed_down=down, token_public_key_pem=None)
    app = FastAPI()
    app.include_router(build_router(svc))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", backlog=4096))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    await svc.start()
    edge = BenchEdge(svc, f"http://127.0.0.1:{port}", srt_port, server, task, events=events)
    w, h = studio_size
    args = [sys.executable, "-m", "edge_agent.studio", "t1", f"srt://127.0.0.1:{srt_port}",
            "--latency", str(latency_ms), "--width", str(w), "--height", str(h)]
    if not audio:
        args.append("--no-audio")
    edge.studio = subprocess.Popen(args, preexec_fn=_die_with_parent, stdout=subprocess.DEVNULL,  # noqa: ASYNC220, PLW1509
                                   stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not svc.is_live("t1"):
        if time.monotonic() > deadline:
            await edge.stop()
            raise RuntimeError("studio feed never came up")
        await asyncio.sleep(0.05)
    return edge


def machine() -> dict[str, Any]:
    import os

    try:
        load = os.getloadavg()[0]
    except OSError:
        load = -1.0
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "load1_at_start": round(load, 2),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))] if s else float("nan")
