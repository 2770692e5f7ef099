"""Detection latency through the real studio link: studio simulator process -> SRT -> the edge's
ingest and ladder (its transcoder process) -> the media tap -> the vision stage.

The edge side is the product's media path (MediaService with one fed table); the benchmark plays
the round engine's part only, telling the studio's dealer what to deal over the dealer link and
waiting for the camera's verdict. Latency = verdict time - capture time stamped by the studio into
the first picture of the deciding run: SRT latency, ingest decode, ladder encode, vision decode and
reading are all in it.

    python -m benchmarks.video.fed [--reveals 150] [--game roulette|baccarat] [--studio-height 720]
Last line: {"bench": "video_vision_fed", ...}
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time

from edge_agent.media.config import MediaConfig, Rung, TableFeed
from edge_agent.media.service import MediaService
from edge_agent.studio import cards as K
from edge_agent.vision.dealer_link import DealerLink
from edge_agent.vision.reader import CODES
from edge_agent.vision.stage import TableVision


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def main_async(a: argparse.Namespace) -> dict:
    rung = Rung(name="360p", width=640, height=360, bitrate_kbps=800)
    feed = TableFeed(table_id="t1", srt_port=_udp_port(), srt_latency_ms=a.srt_latency)
    cfg = MediaConfig(tables=[feed], ladder=[rung], fps=25, keyframe_interval_s=1.0, audio=False,
                      srt_bind="127.0.0.1", announce_addresses=["127.0.0.1"])
    up = asyncio.Event()

    async def on_up(_t: str) -> None:
        up.set()

    async def on_down(_t: str, _r: str) -> None:
        up.clear()

    media = MediaService(cfg, on_feed_up=on_up, on_feed_down=on_down, token_public_key_pem=None)
    vision = TableVision("t1", a.game, rung.width, rung.height)
    media.tables["t1"].tap = lambda _t, r, _p, key, payloads: vision.on_frame(key, payloads)
    await media.start()
    dealer_port = _udp_port()
    w = a.studio_height * 16 // 9
    studio = subprocess.Popen([sys.executable, "-m", "edge_agent.studio", "t1", f"srt://127.0.0.1:{feed.srt_port}",  # noqa: ASYNC220
                               "--no-audio", "--width", str(w), "--height", str(a.studio_height),
                               "--latency", str(a.srt_latency), "--game", a.game, "--dealer-port", str(dealer_port),
                               "--deal-interval", "0.2"], stdin=subprocess.DEVNULL)
    link = DealerLink(f"udp://127.0.0.1:{dealer_port}")
    rnd = random.Random(a.seed)
    verdicts = []
    try:
        await asyncio.wait_for(up.wait(), 30)
        await asyncio.sleep(1.0)
        cpu0, t0 = vision.cpu_s, time.perf_counter()
        for _ in range(a.reveals):
            if a.game == "roulette":
                reveal: dict = {"number": rnd.randrange(37)}
            else:
                slots = ["player0", "banker0", "player1", "banker1"] + ["player2", "banker2"][: rnd.randrange(3)]
                reveal = {s: rnd.choice(CODES) for s in slots}
            link.clear()
            await asyncio.sleep(0.3)  # the table is cleared between rounds
            fut = vision.expect(reveal, timeout_s=5.0)
            link.deal(0, a.game, reveal, K.baccarat_order(reveal) if a.game == "baccarat" else list(reveal))
            verdicts.append(await fut)
        cpu = 100 * (vision.cpu_s - cpu0) / (time.perf_counter() - t0)
    finally:
        studio.terminate()
        studio.wait(5)
        vision.stop()
        await media.stop()
        link.close()
    lat = sorted(v.latency_ms for v in verdicts if v.result == "match" and v.latency_ms is not None)
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else None
    return {"bench": "video_vision_fed", "game": a.game, "studio": f"{a.studio_height}p", "rung": rung.name,
            "srt_latency_ms": a.srt_latency, "reveals": len(verdicts),
            "correct": sum(v.result == "match" for v in verdicts),
            "false_mismatches": sum(v.result == "mismatch" for v in verdicts),
            "unreadable": sum(v.result == "unreadable" for v in verdicts),
            "latency_p50_ms": q(0.5), "latency_p95_ms": q(0.95), "latency_max_ms": lat[-1] if lat else None,
            "vision_cpu_pct": round(cpu, 1), "load1": round(os.getloadavg()[0], 2)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--reveals", type=int, default=150)
    p.add_argument("--game", default="roulette", choices=["roulette", "baccarat"])
    p.add_argument("--studio-height", type=int, default=720)
    p.add_argument("--srt-latency", type=int, default=40)
    p.add_argument("--seed", type=int, default=18)
    print(json.dumps(asyncio.run(main_async(p.parse_args()))))


if __name__ == "__main__":
    main()
