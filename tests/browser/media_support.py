"""Media path for the browser tests: a small one-rung ladder on loopback, and studio simulators."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

VIDEO_TABLES = ["roulette-1"]   # one fed table keeps 2 shared cores free enough for the browser


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def media_config(tmp: Path, table_ids: list[str]):  # -> MediaConfig
    from edge_agent.media.config import MediaConfig, Rung, TableFeed

    latency = int(os.environ.get("BROWSER_SRT_LATENCY_MS", "20"))
    feeds = [TableFeed(table_id=t, srt_port=free_udp_port(), srt_latency_ms=latency) for t in table_ids
             if t in VIDEO_TABLES]
    if os.environ.get("BROWSER_MEDIA_LADDER") == "default":   # the product's 720p/360p/180p ladder
        return MediaConfig(tables=feeds, announce_addresses=["127.0.0.1"], audio=False, srt_bind="127.0.0.1")
    return MediaConfig(tables=feeds, ladder=[Rung(name="360p", width=640, height=360, bitrate_kbps=800)],
                       fps=25, keyframe_interval_s=1.0, announce_addresses=["127.0.0.1"], start_rung=0,
                       audio=False, srt_bind="127.0.0.1")


def start_studios(cfg) -> list[subprocess.Popen]:  # cfg: MediaConfig
    procs = []
    top = cfg.ladder[0]
    for f in cfg.tables:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "edge_agent.studio", f.table_id, f"srt://127.0.0.1:{f.srt_port}",
             "--no-audio", "--width", str(top.width), "--height", str(top.height), "--latency",
             str(f.srt_latency_ms)],
            stdin=subprocess.DEVNULL))
    return procs
