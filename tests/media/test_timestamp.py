"""The capture timestamp survives H.264 encoding and scaling down to the smallest rung."""
from __future__ import annotations

import fractions

import av

from edge_agent.media.timestamp import read_capture_ts, read_raw
from edge_agent.studio.render import TableRenderer


def test_capture_ts_survives_encode_and_180p() -> None:
    ts = 1_764_000_123_456
    frame = TableRenderer("t1", 1280, 720).render(7, ts, "ROUND 12 RED 7")
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = 320, 180, "yuv420p"
    enc.time_base = fractions.Fraction(1, 25)
    enc.bit_rate = 150_000
    enc.options = {"preset": "ultrafast", "tune": "zerolatency"}
    small = frame.reformat(320, 180, "yuv420p")
    small.pts = 0
    packets = list(enc.encode(small)) + list(enc.encode(None))
    dec = av.CodecContext.create("h264", "r")
    out = [f for p in packets for f in dec.decode(p)]
    assert out
    assert read_capture_ts(out[0], now_ms=ts + 100) == ts
    assert read_capture_ts(frame, now_ms=ts + 5) == ts


def test_no_code_reads_none() -> None:
    blank = av.VideoFrame(320, 180, "yuv420p")
    for p in blank.planes:
        p.update(bytes(p.buffer_size))
    assert read_raw(blank) is None
