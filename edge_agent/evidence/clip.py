"""MP4 clip from encoded frames: a remux (no decoding, no encoding), then its SHA-256."""
from __future__ import annotations

import fractions
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import av

TB = fractions.Fraction(1, 90000)


def remux(frames: Iterable[tuple[int, bool, bytes]], out: Path, width: int, height: int, fps: int) -> int:
    """Write the frames (pts90, key, annex-b) from the first keyframe on; returns frames written.

    `+faststart` puts the index first so a browser can play (and seek) before the whole clip
    has arrived. Written to a temporary name and renamed: a clip file is always complete."""
    tmp = out.with_suffix(".mp4.tmp")
    container = av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"})
    n = 0
    try:
        stream = container.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.time_base = width, height, TB
        base: int | None = None
        for pts, key, au in frames:
            if base is None:
                if not key:
                    continue  # a clip starts on a keyframe: what precedes it cannot be decoded
                base = pts
            pkt = av.Packet(au)
            pkt.pts = pkt.dts = pts - base
            pkt.time_base, pkt.stream, pkt.is_keyframe = TB, stream, key
            container.mux(pkt)
            n += 1
    finally:
        container.close()
    if n == 0:
        tmp.unlink(missing_ok=True)
        return 0
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out)
    return n


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size
