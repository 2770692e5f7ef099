"""A real edge with fed tables for the video tests: runtime.Edge (casino, media ladder over SRT,
round video, the vision check) in-process, and studio simulator subprocesses dealing what the
edge tells them over the dealer link."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from edge_agent.config import EdgeConfig
from edge_agent.media.config import MediaConfig, Rung, TableFeed
from tests.edge.conftest import PUBLIC_PEM

RUNG = Rung(name="360p", width=640, height=360, bitrate_kbps=800)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fed_config(tmp: Path, games: dict[str, str], **video: Any) -> tuple[EdgeConfig, dict[str, int]]:
    """An edge whose tables (table_id -> game) are all fed; returns it and each dealer's UDP port."""
    feeds = [TableFeed(table_id=t, srt_port=free_udp_port(), srt_latency_ms=20) for t in games]
    dealers = {t: free_udp_port() for t in games}
    media = MediaConfig(tables=feeds, ladder=[RUNG], fps=25, keyframe_interval_s=1.0,
                        announce_addresses=["127.0.0.1"], start_rung=0, audio=False, srt_bind="127.0.0.1")
    cfg = EdgeConfig(
        edge_id="mt-1", jurisdiction="MT", db_path=tmp / "journal.db", residency_key_hex="00" * 32,
        token_public_key_pem=PUBLIC_PEM, http={"port": free_tcp_port()},
        tables=[{"table_id": t, "game": g, "betting_window_s": 1.0, "reveal_s": 0.3, "requires_feed": True}
                for t, g in games.items()],
        media=media,
        video={"dir": str(tmp / "video"), "vision": {"timeout_s": 6.0,
                                                      "dealers": {t: f"udp://127.0.0.1:{p}" for t, p in dealers.items()}},
               **video})
    return cfg, dealers


def start_studio(cfg: EdgeConfig, table_id: str, dealer_port: int, *, fault_every: int = 0) -> subprocess.Popen:
    feed = next(f for f in cfg.media.tables if f.table_id == table_id)
    game = next(t.game for t in cfg.tables if t.table_id == table_id)
    return subprocess.Popen(
        [sys.executable, "-m", "edge_agent.studio", table_id, f"srt://127.0.0.1:{feed.srt_port}", "--no-audio",
         "--width", str(RUNG.width), "--height", str(RUNG.height), "--latency", str(feed.srt_latency_ms),
         "--game", game, "--dealer-port", str(dealer_port), "--deal-interval", "0.15",
         "--fault-every", str(fault_every)],
        stdin=subprocess.DEVNULL)


def start_plain_studio(cfg: EdgeConfig, table_id: str) -> subprocess.Popen:
    """A studio whose dealer takes no instructions: the camera never shows a reveal."""
    feed = next(f for f in cfg.media.tables if f.table_id == table_id)
    return subprocess.Popen(
        [sys.executable, "-m", "edge_agent.studio", table_id, f"srt://127.0.0.1:{feed.srt_port}", "--no-audio",
         "--width", str(RUNG.width), "--height", str(RUNG.height), "--latency", str(feed.srt_latency_ms)],
        stdin=subprocess.DEVNULL)


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
