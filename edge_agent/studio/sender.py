"""The studio encoder: render, encode H.264 + AAC, mux MPEG-TS straight into the SRT caller
(libsrt in-process, edge_agent.media.srt.SrtCaller), which carries it to the edge. PyAV wheels have
no SRT, hence libsrt through ctypes; in-process, the passphrase never appears on a command line."""
from __future__ import annotations

import fractions
import math
import signal
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import av
import numpy as np
import structlog

from edge_agent.media.config import read_passphrase
from edge_agent.media.srt import SrtCaller
from edge_agent.studio.render import Scene, TableRenderer

log = structlog.get_logger(__name__)

OverlaySource = Callable[[], str | None]


def run_studio(
    table_id: str,
    srt_url: str,
    overlay_source: OverlaySource | None = None,
    fps: int = 25,
    *,
    width: int = 1280,
    height: int = 720,
    bitrate_kbps: int = 4000,
    latency_ms: int | None = 40,
    duration_s: float | None = None,
    audio: bool = True,
    passphrase_file: str | None = None,
    streamid: str | None = None,
    game: str = "roulette",
    scene: Scene | None = None,
) -> None:
    """Stream the simulated table to `srt_url` (e.g. "srt://edge:9000") until `duration_s` or SIGTERM.

    `passphrase_file` (mode 0600) and `streamid` authenticate and encrypt the link (AES-256), as
    the edge's table config asks."""
    passphrase = read_passphrase(Path(passphrase_file)) if passphrase_file else None
    target = urlsplit(srt_url)
    caller = SrtCaller(target.hostname or "127.0.0.1", target.port or 9000,
                       latency_ms if latency_ms is not None else 120, passphrase=passphrase, streamid=streamid)
    caller.start()
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    # The muxer writes straight into the SRT caller: flushed per packet, whole TS packets.
    out = av.open(caller, mode="w", format="mpegts", buffer_size=SrtCaller.CHUNK,
                  options={"flush_packets": "1", "omit_video_pes_length": "0"})
    try:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.bit_rate = bitrate_kbps * 1000
        v.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(fps), "bf": "0",
                     "x264-params": "repeat-headers=1"}
        v.codec_context.time_base = fractions.Fraction(1, fps)
        a = None
        if audio:
            a = out.add_stream("aac", rate=48000)
            a.layout = "stereo"
            a.bit_rate = 96000
        renderer = TableRenderer(table_id, width, height, game=game)
        log.info("studio.start", table=table_id, srt=srt_url, fps=fps, encrypted=passphrase is not None)
        t0 = time.monotonic()
        samples = 0
        i = 0
        while not stop and (duration_s is None or i < duration_s * fps):
            deadline = t0 + i / fps
            delay = deadline - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:  # fell behind (CPU starved): skip ahead instead of bursting
                t0 = time.monotonic() - i / fps
            overlay = overlay_source() if overlay_source else None
            frame = renderer.render(i, int(time.time() * 1000), overlay, scene)
            frame.pts = i
            frame.time_base = fractions.Fraction(1, fps)
            for pkt in v.encode(frame):
                out.mux(pkt)
            if a is not None:
                # AAC wants 1024-sample frames: emit as many as the video clock has reached.
                while samples < (i + 1) * 48000 // fps:
                    t = (samples + np.arange(1024)) / 48000
                    tone = (0.1 * np.sin(2 * math.pi * 440 * t) * 32767).astype(np.int16)
                    af = av.AudioFrame.from_ndarray(np.vstack([tone, tone]).reshape(1, -1), format="s16",
                                                    layout="stereo")
                    af.sample_rate, af.pts = 48000, samples
                    af.time_base = fractions.Fraction(1, 48000)
                    for pkt in a.encode(af):
                        out.mux(pkt)
                    samples += 1024
            i += 1
    finally:
        try:
            out.close()
        except Exception as exc:  # noqa: BLE001 - best effort on shutdown
            log.debug("studio.close_failed", error=str(exc))
        caller.close()
        log.info("studio.stop", table=table_id, frames=i if "i" in locals() else 0)
