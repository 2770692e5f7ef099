"""Glass-to-glass latency: the studio draws its capture clock into every picture; a WHEP player
(aiortc, same machine, same clock) decodes the picture and reads the clock back.

    python -m benchmarks.media.glass_to_glass [--seconds 20] [--latency 40] [--rung 0]

Camera = the studio's render step; screen = the decoded frame in the player (aiortc's decoder,
not a display). Also reports the edge-side part (capture -> decoded at the edge) from the
transcoder's own reading of the same clock.

aiortc's jitter buffer hands a frame to the decoder only when the first packet of the *next*
frame arrives (a browser completes a frame on the RTP marker bit), which adds up to one frame
interval. The benchmark records, per RTP timestamp, when the marker packet and when the next
frame's first packet arrived, and reports `p50_ms`/`p95_ms` without that hold time
(`p50_ms_aiortc`/`p95_ms_aiortc` include it). Last line: {"bench": "glass_to_glass", ...}.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx

from benchmarks.media.harness import machine, percentile, start_edge
from edge_agent.media import metrics
from edge_agent.media.client import play
from edge_agent.media.timestamp import read_capture_ts


def _hist_quantile(hist, q: float) -> float | None:
    # Prometheus histogram -> rough quantile (bucket upper bound), for the breakdown only.
    samples = [s for m in hist.collect() for s in m.samples if s.name.endswith("_bucket")]
    total = max((s.value for s in samples), default=0)
    if not total:
        return None
    for s in sorted(samples, key=lambda s: float(s.labels["le"])):
        if s.value >= q * total:
            return float(s.labels["le"]) * 1000
    return None


async def run(seconds: float, latency_ms: int, rung: int) -> dict[str, object]:
    edge = await start_edge(latency_ms=latency_ms, start_rung=rung)
    lat: list[float] = []
    held: list[float] = []
    unreadable = 0
    try:
        async with httpx.AsyncClient(timeout=20) as http:
            player = await play(http, f"{edge.base}/whep/t1")
            while "video" not in player.tracks:
                await asyncio.sleep(0.05)
            track = player.tracks["video"]
            receiver = next(t.receiver for t in player.pc.getTransceivers() if t.kind == "video")
            marker_at: dict[int, float] = {}
            first_at: dict[int, float] = {}
            order: list[int] = []
            base: list[int] = []
            original = receiver._handle_rtp_packet

            async def spy(packet, arrival_time_ms):  # type: ignore[no-untyped-def]
                t = time.time() * 1000
                if not base:
                    base.append(packet.timestamp)
                if packet.timestamp not in first_at:
                    first_at[packet.timestamp] = t
                    order.append(packet.timestamp)
                if packet.marker:
                    marker_at[packet.timestamp] = t
                await original(packet, arrival_time_ms)

            receiver._handle_rtp_packet = spy
            held: list[float] = []
            t_end = time.monotonic() + seconds
            warm = time.monotonic() + 2.0  # skip the GOP-cache burst at join
            while time.monotonic() < t_end:
                frame = await asyncio.wait_for(track.recv(), 10)
                now = time.time() * 1000
                if time.monotonic() < warm:
                    continue
                ts = read_capture_ts(frame)
                if ts is None:
                    unreadable += 1
                    continue
                lat.append(now - ts)
                # Hold time in aiortc's jitter buffer: marker packet -> next frame's first packet.
                rtp_ts = (base[0] + frame.pts) & 0xFFFFFFFF  # aiortc's pts counts from the first packet
                hold = 0.0
                if rtp_ts in marker_at and rtp_ts in order:
                    i = order.index(rtp_ts)
                    if i + 1 < len(order):
                        hold = max(0.0, first_at[order[i + 1]] - marker_at[rtp_ts])
                held.append(now - ts - hold)
                if len(order) > 500:
                    for old in order[:250]:
                        marker_at.pop(old, None)
                        first_at.pop(old, None)
                    del order[:250]
            await player.close(http)
        ingest_p50 = _hist_quantile(metrics.INGEST_LATENCY, 0.5)
        encode_p50 = _hist_quantile(metrics.ENCODE_TIME, 0.5)
    finally:
        await edge.stop()
    return {
        "bench": "glass_to_glass", "p50_ms": round(percentile(held, 50), 1), "p95_ms": round(percentile(held, 95), 1),
        "p50_ms_aiortc": round(percentile(lat, 50), 1), "p95_ms_aiortc": round(percentile(lat, 95), 1),
        "max_ms_aiortc": round(max(lat), 1) if lat else None, "frames": len(lat), "unreadable": unreadable,
        "srt_latency_ms": latency_ms, "rung": rung,
        "edge_ingest_p50_ms_le": ingest_p50, "ladder_encode_p50_ms_le": encode_p50, **machine(),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--latency", type=int, default=40)
    p.add_argument("--rung", type=int, default=0)
    a = p.parse_args()
    print(json.dumps(asyncio.run(run(a.seconds, a.latency, a.rung))))


if __name__ == "__main__":
    main()
