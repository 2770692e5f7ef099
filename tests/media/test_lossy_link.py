"""Contribution under loss: 5 % of datagrams dropped at random both ways and 20 ms each way
(RTT 40 ms) on the studio link; with SRT latency 200 ms (5x RTT) the table stays live and at
least 99 % of the studio's pictures reach the ladder (SRT retransmits within its latency)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

from prometheus_client import REGISTRY

from edge_agent.media.config import TableFeed
from tests.media.conftest import free_port

LOSS, DELAY_MS, SRT_LATENCY_MS, SECONDS, FPS = 0.05, 20, 200, 14, 25


def _count(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"table": "t1"}) or 0.0


def _relay(listen: int, target: int) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, "-m", "tests.media.lossy_relay", str(listen), str(target),
                          "--loss", str(LOSS), "--delay-ms", str(DELAY_MS), "--seed", "7"],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "READY"
    return p


def _studio(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "quiet", "-re", "-f", "lavfi", "-i", f"testsrc=size=320x180:rate={FPS}",
         "-t", str(SECONDS), "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
         "-g", str(FPS), "-b:v", "600k", "-f", "mpegts",
         f"srt://127.0.0.1:{port}?pkt_size=1316&latency={SRT_LATENCY_MS * 1000}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_lossy_link_stays_live_and_delivers(edge_factory) -> None:
    srt_port = free_port(socket.SOCK_DGRAM)
    edge = await edge_factory(tables=[TableFeed(table_id="t1", srt_port=srt_port, srt_latency_ms=SRT_LATENCY_MS)],
                              audio=False)
    relay_port = free_port(socket.SOCK_DGRAM)
    relay = _relay(relay_port, srt_port)
    frames0, missing0 = _count("media_ingest_frames_total"), _count("media_ingest_frames_missing_total")
    studio = _studio(relay_port)
    try:
        assert await edge.wait(lambda: edge.service.is_live("t1"), timeout=20), "never live through the relay"
        assert await edge.wait(lambda: studio.poll() is not None, timeout=SECONDS + 20)
        downs_while_sending = list(edge.downs)
        await edge.wait(lambda: not edge.service.is_live("t1"), timeout=5)
    finally:
        studio.kill()
        relay.terminate()
        out, _ = relay.communicate(timeout=10)
    stats = json.loads(out.strip().splitlines()[-1])
    for leg in ("up", "down"):  # the relay really dropped about 5 % each way
        assert stats[leg]["seen"] > 100 and 0.025 < stats[leg]["dropped"] / stats[leg]["seen"] < 0.08, stats
    assert downs_while_sending == [], downs_while_sending  # stayed live throughout
    decoded = _count("media_ingest_frames_total") - frames0
    missing = _count("media_ingest_frames_missing_total") - missing0
    assert decoded >= 0.9 * SECONDS * FPS, (decoded, missing)  # the run was real, not a few frames
    assert decoded / (decoded + missing) >= 0.99, (decoded, missing, stats)
