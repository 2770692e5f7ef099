"""Records part of a round, then dies by SIGKILL mid-clip (test_evidence's crash test).

    python -m tests.video.crash_child DIR FRAMES
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from edge_agent.evidence.config import VideoConfig
from edge_agent.evidence.service import EvidenceService
from edge_agent.journal.store import JournalStore
from tests.video.support import Camera, media_config

if __name__ == "__main__":
    root, frames = Path(sys.argv[1]), int(sys.argv[2])
    store = JournalStore(root / "journal.db")
    svc = EvidenceService(VideoConfig(dir=root / "video"), media_config("roulette-1"), store.append, store.query)
    svc.round_opened("roulette-1", "c1", 1)
    for pts, key, payloads in Camera().frames(frames):
        svc.on_frame("roulette-1", 0, pts, key, payloads)
    store.flush()
    print("RECORDED", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
