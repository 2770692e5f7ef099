"""Glass-to-glass latency in Chromium: studio capture clock drawn in the picture -> the browser.

    python -m benchmarks.browser.glass_to_glass [--seconds 20] [--warmup 3]

Runs a real edge with its media path (studio simulator -> SRT -> transcode -> WHEP) on loopback,
opens the player page in headless Debian Chromium, and for every displayed frame reads the
capture timestamp blocks back from the picture (requestVideoFrameCallback + canvas) and compares
them with the browser's clock at the frame's expected display time. Last line: the JSON result.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from contract import tokens
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, EdgeProc


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


RECEIVE_STATS = """async () => {
  const pc = window.__casino.video.pc; let out = {};
  (await pc.getStats()).forEach(r => {
    if (r.type === 'inbound-rtp' && r.kind === 'video' && r.jitterBufferEmittedCount) {
      out = {chromium_jitter_buffer: 1000 * r.jitterBufferDelay / r.jitterBufferEmittedCount,
             chromium_decode: 1000 * r.totalDecodeTime / r.framesDecoded,
             chromium_receive_to_decoded: 1000 * (r.totalProcessingDelay || 0) / r.framesDecoded};
    }
  });
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Math.round(v * 10) / 10]));
}"""


def _edge_sums(url: str) -> dict[str, float]:
    import httpx

    sums: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        for name in ("media_ingest_latency_seconds", "media_ladder_encode_seconds"):
            for suffix in ("_sum", "_count"):
                if line.startswith(name + suffix + "{"):
                    sums[name + suffix] = sums.get(name + suffix, 0.0) + float(line.rsplit(" ", 1)[1])
    return sums


def _edge_breakdown(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Means over the window of the edge's media histograms (capture -> decoded, ladder encode)."""
    sums = {k: v - before.get(k, 0.0) for k, v in after.items()}
    out = {}
    for name, key in (("media_ingest_latency_seconds", "edge_capture_to_decoded"),
                      ("media_ladder_encode_seconds", "edge_ladder_encode")):
        if sums.get(name + "_count"):
            out[key] = round(1000 * sums[name + "_sum"] / sums[name + "_count"], 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--srt-latency", type=int, default=40, help="SRT latency of the studio link, ms")
    ap.add_argument("--ladder", choices=["light", "default"], default="default",
                    help="default: the product's 720p/360p/180p ladder; light: one 360p rung")
    a = ap.parse_args()
    # Read by the edge subprocess (tests/browser/media_support.py).
    os.environ["BROWSER_SRT_LATENCY_MS"] = str(a.srt_latency)
    if a.ladder == "default":
        os.environ["BROWSER_MEDIA_LADDER"] = "default"
    else:
        os.environ.pop("BROWSER_MEDIA_LADDER", None)
    from playwright.sync_api import sync_playwright

    key = tokens.new_signing_key()
    with tempfile.TemporaryDirectory() as tmp:
        edge = EdgeProc(Path(tmp), key, media=True)
        try:
            edge.fund("bench", 10_000)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(edge.page_url("bench"))
                page.wait_for_function("() => window.__casino.videoStats?.state === 'playing'", timeout=30_000)
                page.evaluate("() => { window.__casino.video.readIntervalMs = 0; }")
                time.sleep(a.warmup)
                edge_before = _edge_sums(edge.url)
                start = page.evaluate("() => ({n: window.__casino.videoStats.g2g.length,"
                                      " f: window.__casino.videoStats.framesDecoded})")
                time.sleep(a.seconds)
                parts = page.evaluate(RECEIVE_STATS)
                edge_parts = _edge_breakdown(edge_before, _edge_sums(edge.url))
                res = page.evaluate("() => ({g2g: window.__casino.videoStats.g2g,"
                                    " f: window.__casino.videoStats.framesDecoded,"
                                    " dropped: window.__casino.videoStats.framesDropped || 0,"
                                    " w: window.__casino.videoStats.frameWidth,"
                                    " h: window.__casino.videoStats.frameHeight})")
                browser.close()
        finally:
            edge.stop()
    samples = res["g2g"][start["n"]:]
    if len(samples) < 10:
        print(json.dumps({"bench": "browser_glass_to_glass", "error": "too few frames read",
                          "samples": len(samples)}))
        sys.exit(1)
    frames = res["f"] - start["f"]
    print(f"{len(samples)} frames with a readable capture clock over {a.seconds:.0f} s "
          f"({frames / a.seconds:.1f} fps decoded, {res['w']}x{res['h']}); "
          f"min {min(samples):.1f} ms, max {max(samples):.1f} ms", file=sys.stderr)
    print(json.dumps({"bench": "browser_glass_to_glass", "p50_ms": round(percentile(samples, 50), 1),
                      "p95_ms": round(percentile(samples, 95), 1), "p99_ms": round(percentile(samples, 99), 1),
                      "samples": len(samples), "fps": round(frames / a.seconds, 1),
                      "frames_dropped": res["dropped"], "resolution": f"{res['w']}x{res['h']}",
                      "seconds": a.seconds, "srt_latency_ms": a.srt_latency, "ladder": a.ladder,
                      # Where the time goes (means): studio capture -> decoded at the edge
                      # (studio encode + SRT latency + demux + decode), the ladder's encode, and
                      # Chromium's jitter buffer / decode; the rest is render + frame callback.
                      "breakdown_ms": {**edge_parts, **parts}}))


if __name__ == "__main__":
    main()
