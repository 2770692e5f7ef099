"""Recording CPU per table: what keeping every round on video costs the edge.

The studio picture is encoded once by the real ladder (not timed: the ladder runs anyway for
the players); then the recorder is timed on those frames as the edge runs it: reassembling each
frame from its RTP payloads, the GOP buffer, the spool writes, and at each round's end the remux
to MP4 and the SHA-256. CPU seconds per second of video = the share of one core one table takes.

    python -m benchmarks.video.recording [--seconds 60] [--round-s 20] [--rung 360p]
Last line: {"bench": "video_recording", "cpu_per_table_pct": ..., ...}
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from edge_agent.evidence.config import VideoConfig
from edge_agent.evidence.library import VideoLibrary
from edge_agent.evidence.recorder import TableRecorder, finish_spool
from edge_agent.evidence.rtp import access_unit
from edge_agent.media.config import Rung, default_ladder
from edge_agent.media.transcode import Ladder
from edge_agent.studio.dealer import Dealer
from edge_agent.studio.render import TableRenderer


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--round-s", type=float, default=20)
    p.add_argument("--rung", default="360p")
    p.add_argument("--fps", type=int, default=25)
    a = p.parse_args()
    rung: Rung = next(r for r in default_ladder() if r.name == a.rung)
    renderer = TableRenderer("bench", 1280, 720, game="baccarat")
    dealer = Dealer("baccarat", 1280, 720, a.fps, deal_interval_s=0.6)
    ladder = Ladder([rung], a.fps, a.fps)
    frames = []
    n = int(a.seconds * a.fps)
    for i in range(n):
        if i % int(a.round_s * a.fps) == int(a.round_s * a.fps) // 2:
            dealer.instruct({"op": "clear"})
            dealer.instruct({"op": "deal", "reveal": {"player0": "9H", "banker0": "KS", "player1": "3D",
                                                      "banker1": "AC"}})
        f = renderer.render(i, int(time.time() * 1000), None, dealer)
        for _r, key, payloads, _s in ladder.encode(f, i * 90000 // a.fps):
            frames.append((i * 90000 // a.fps, key, payloads))
    with tempfile.TemporaryDirectory() as tmp:
        lib = VideoLibrary(VideoConfig(dir=Path(tmp)))
        rec = TableRecorder("bench", lib, rung.name, rung.width, rung.height, a.fps, rung.bitrate_kbps)
        per_round = int(a.round_s * a.fps)
        clips, clip_bytes = 0, 0
        t0, c0 = time.perf_counter(), time.thread_time()
        for i, (pts, key, payloads) in enumerate(frames):
            if i % per_round == 0:
                if i:
                    clips, clip_bytes = clips + 1, clip_bytes + _end(rec, lib, clips)
                rec.begin("c", clips + 1)
            rec.on_access_unit(pts, key, access_unit(payloads))
        clips, clip_bytes = clips + 1, clip_bytes + _end(rec, lib, clips)
        cpu, wall = time.thread_time() - c0, time.perf_counter() - t0
    video_s = n / a.fps
    load = os.getloadavg()[0]
    print(json.dumps({"bench": "video_recording", "rung": rung.name, "bitrate_kbps": rung.bitrate_kbps,
                      "video_s": video_s, "clips": clips, "clip_mb": round(clip_bytes / 1e6, 2),
                      "clip_kbps": round(clip_bytes * 8 / video_s / 1000),
                      "cpu_s": round(cpu, 3), "cpu_per_table_pct": round(100 * cpu / video_s, 3),
                      "wall_s": round(wall, 2), "load1": round(load, 2)}))


def _end(rec: TableRecorder, lib: VideoLibrary, clips: int) -> int:
    """Round end, synchronously (the edge runs this part in a worker thread)."""
    a = rec._active
    assert a is not None
    rec._active = None
    a.spool.close()
    clip = finish_spool(lib, a.spool.path, a.meta, a.first_ts or 0, a.last_ts or 0)
    assert clip is not None
    return clip.bytes


if __name__ == "__main__":
    main()
