"""Egress with ABR on a mixed population vs everyone on a fixed 2 Mbps stream.

    python -m benchmarks.media.egress [--viewers 40] [--seconds 12]

Real edge + studio (720p with sensor grain, so rungs run at their bitrates: 2000/800/250 kbps).
Each viewer belongs to a bandwidth class and reports it the way a browser does, by REMB over
SRTCP, once a second (the classes stand for a mobile-heavy live-casino audience):
  30% 0.6 Mbps (3G / weak cellular), 45% 1.5 Mbps (4G, shared Wi-Fi), 25% 8 Mbps (broadband).
Run 1: ABR on, viewers start on the middle rung and the edge moves them. Run 2: ABR off, all on
the 2 Mbps top rung (what a single-bitrate edge sends; the low classes could not even carry it).
Egress = bytes the receivers got in the measurement window. Last line: {"bench": "egress_abr", ...}.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import re
from typing import Any

import httpx
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci

from benchmarks.media.harness import machine, start_edge
from benchmarks.media.viewers import Counter, _lighten
from edge_agent.media.client import play

CLASSES = [(0.30, 600_000), (0.45, 1_500_000), (0.25, 8_000_000)]


def classes_for(n: int) -> list[int]:
    out: list[int] = []
    for share, bps in CLASSES:
        out += [bps] * round(share * n)
    return (out + [CLASSES[-1][1]] * n)[:n]


async def _receiver(base: str, caps: list[int], settle: float, seconds: float, out: Any) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        players, counters = [], []
        for cap in caps:
            p = await play(http, f"{base}/whep/t1", audio=False)
            for _ in range(400):
                if p.pc.connectionState == "connected":
                    break
                await asyncio.sleep(0.05)
            c = Counter()
            _lighten(p, c)
            sdp = p.pc.remoteDescription.sdp
            ssrc = int(re.search(r"a=ssrc:(\d+)", sdp[sdp.index("m=video"):]).group(1))
            recv = next(t.receiver for t in p.pc.getTransceivers() if t.kind == "video")
            players.append((p, recv, ssrc, cap))
            counters.append(c)

        async def remb_loop() -> None:
            while True:
                for _, recv, ssrc, cap in players:
                    pkt = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(cap, [ssrc]))
                    await recv._send_rtcp(pkt)
                await asyncio.sleep(1.0)

        task = asyncio.create_task(remb_loop())
        await asyncio.sleep(settle)
        for c in counters:
            c.measuring = True
        await asyncio.sleep(seconds)
        for c in counters:
            c.measuring = False
        task.cancel()
        out.put([(cap, c.bytes) for (_, _, _, cap), c in zip(players, counters)])
        await asyncio.gather(*(p.pc.close() for p, *_ in players), return_exceptions=True)


def receiver_main(base: str, caps: list[int], settle: float, seconds: float, out: Any) -> None:
    asyncio.run(_receiver(base, caps, settle, seconds, out))


async def one_run(abr: bool, caps: list[int], seconds: float) -> tuple[list[tuple[int, int]], list[int]]:
    edge = await start_edge(abr=abr, start_rung=1 if abr else 0, audio=False)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    p = ctx.Process(target=receiver_main, args=(edge.base, caps, 8.0, seconds, out), daemon=True)
    p.start()
    try:
        res = await asyncio.get_running_loop().run_in_executor(None, out.get, True, 300)
        rungs = [s.rung for s in edge.service.tables["t1"].sessions.values()]
    finally:
        p.join(20)
        await edge.stop()
    return res, rungs


async def run(n: int, seconds: float) -> dict[str, Any]:
    caps = classes_for(n)
    abr_res, abr_rungs = await one_run(True, caps, seconds)
    fixed_res, _ = await one_run(False, caps, seconds)
    abr_bits = sum(b for _, b in abr_res) * 8 / seconds
    fixed_bits = sum(b for _, b in fixed_res) * 8 / seconds
    by_class = {}
    for _, bps in CLASSES:
        mine = [b for c, b in abr_res if c == bps]
        by_class[f"{bps // 1000}kbps"] = round(sum(mine) * 8 / seconds / max(1, len(mine)) / 1e6, 3)
    return {
        "bench": "egress_abr", "viewers": n, "abr_mbps": round(abr_bits / 1e6, 2),
        "fixed_2mbps_mbps": round(fixed_bits / 1e6, 2),
        "reduction_pct": round(100 * (1 - abr_bits / fixed_bits), 1) if fixed_bits else None,
        "abr_mbps_per_viewer_by_class": by_class,
        "final_rungs": {str(r): abr_rungs.count(r) for r in sorted(set(abr_rungs))}, "seconds": seconds,
        **machine(),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--viewers", type=int, default=40)
    p.add_argument("--seconds", type=float, default=12)
    a = p.parse_args()
    print(json.dumps(asyncio.run(run(a.viewers, a.seconds))))


if __name__ == "__main__":
    main()
