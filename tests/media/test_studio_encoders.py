"""Studio encoders as they are: the ladder's output rate is configured and other rates are
converted; stock ffmpeg (H.264 High with B-frames at 50 fps, AAC) reaches a player at 25 fps."""
from __future__ import annotations

import asyncio
import itertools
import subprocess
import time

import httpx
import pytest
from prometheus_client import REGISTRY

from edge_agent.media.client import play
from edge_agent.media.transcode import OutputClock


def _out(fps_in: float, fps_out: int, seconds: float = 2.0) -> list[float]:
    clock = OutputClock(fps_out)
    slots: list[float] = []
    for i in range(int(fps_in * seconds)):
        slots += clock.slots(10.0 + i / fps_in)
    return slots


def test_output_clock_converts_rates() -> None:
    for fps_in in (50, 30, 29.97, 25, 24, 60):
        slots = _out(fps_in, 25)
        assert abs(len(slots) - 50) <= 1, (fps_in, len(slots))
        gaps = [b - a for a, b in itertools.pairwise(slots)]
        assert all(abs(g - 0.04) < 1e-6 for g in gaps), fps_in  # evenly spaced at the output rate
    assert abs(len(_out(50, 50)) - 100) <= 1 and abs(len(_out(25, 50)) - 100) <= 1  # 25 -> 50 repeats each
    clock = OutputClock(25)
    assert clock.slots(0.0) == [0.0]
    assert clock.slots(100.0) == [100.0]  # a jump (new feed) restarts the slots, no burst


def _rung_frames() -> float:
    return REGISTRY.get_sample_value("media_rung_frames_total", {"table": "t1", "rung": "360p"}) or 0.0


def _stock_studio(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=50",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "12", "-pix_fmt", "yuv420p",
         "-c:v", "libx264", "-preset", "superfast", "-profile:v", "high", "-bf", "3", "-g", "50",
         "-c:a", "aac", "-f", "mpegts", f"srt://127.0.0.1:{port}?pkt_size=1316&latency=120000"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.parametrize("fps_out", [25, 50])
async def test_h264_high_bframes_50fps_with_aac_plays_at_the_ladder_rate(fps_out: int, edge_factory,
                                                                        http: httpx.AsyncClient) -> None:
    edge = await edge_factory(fps=fps_out)
    svc = edge.service
    ffmpeg = _stock_studio(edge.srt_port)
    try:
        assert await edge.wait(lambda: svc.is_live("t1"), timeout=30), "feed never came up"
        player = await play(http, f"{edge.base}/whep/t1")
        try:
            assert await edge.wait(lambda: "video" in player.tracks and "audio" in player.tracks)
            frame = await asyncio.wait_for(player.tracks["video"].recv(), 10)
            assert (frame.width, frame.height) == (640, 360)
            audio = await asyncio.wait_for(player.tracks["audio"].recv(), 10)  # AAC 44.1 kHz in, Opus out
            assert audio.sample_rate == 48000
            n0, t0 = _rung_frames(), time.monotonic()
            await asyncio.sleep(3)
            rate = (_rung_frames() - n0) / (time.monotonic() - t0)
            # 50 fps in, the ladder's rate out (the lower bound leaves slack for a loaded box)
            assert 0.8 * fps_out <= rate <= 1.08 * fps_out, rate
        finally:
            await player.close(http)
    finally:
        ffmpeg.kill()
        ffmpeg.wait()
