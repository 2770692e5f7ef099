"""Round clips: remuxed from the ladder's packets, hashed into the journal, kept per retention,
and what a full disk or a crash mid-clip leaves behind."""
from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
from pathlib import Path

import av
import pytest

from edge_agent.evidence import kinds as K
from edge_agent.evidence.clip import sha256_file
from edge_agent.evidence.config import VideoConfig
from edge_agent.evidence.service import EvidenceService
from edge_agent.journal.store import JournalStore
from tests.video.support import Camera, media_config


@pytest.fixture
def store(tmp_path: Path):
    s = JournalStore(tmp_path / "journal.db", clock=lambda: 1_000)
    yield s
    s.close()


def service(tmp_path: Path, store: JournalStore, **kw) -> EvidenceService:
    cfg = VideoConfig(dir=tmp_path / "video", **kw)
    return EvidenceService(cfg, media_config("roulette-1"), store.append, store.query)


def feed(svc: EvidenceService, cam: Camera, n: int) -> None:
    for pts, key, payloads in cam.frames(n):
        svc.on_frame("roulette-1", 0, pts, key, payloads)


def entries(store: JournalStore, kind: str) -> list[dict]:
    store.flush()
    return [e for e in store.read(1) if e["kind"] == kind]


async def test_clip_of_a_round_is_the_ladders_packets_hashed_into_the_journal(tmp_path, store):
    svc = service(tmp_path, store)
    cam = Camera()
    feed(svc, cam, 7)                    # mid-GOP when the round opens
    svc.round_opened("roulette-1", "c1", 1)
    feed(svc, cam, 40)
    e = await svc.round_ending("roulette-1", "c1", 1)
    assert e is not None and e["kind"] == K.ROUND_VIDEO
    d = e["data"]
    path = tmp_path / "video" / "roulette-1" / "roulette-1.c1.1.mp4"
    assert (d["sha256"], d["bytes"]) == sha256_file(path)
    assert d["container"] == "mp4" and d["rung"] == "180p" and d["start_ts"] <= d["end_ts"]
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    # From the keyframe before the opening (frame 0, GOP of 10) to the round's end: all decode.
    assert len(frames) == 47 and (frames[0].width, frames[0].height) == (320, 180)
    assert not list((tmp_path / "video" / "roulette-1").glob("*.spool"))


async def test_retention_deletes_the_clip_and_keeps_its_entry(tmp_path, store):
    svc = service(tmp_path, store, retention_days=1)
    cam = Camera()
    svc.round_opened("roulette-1", "c1", 1)
    feed(svc, cam, 12)
    video = (await svc.round_ending("roulette-1", "c1", 1))["data"]
    assert svc.sweep(video["end_ts"] + 86_400_000 - 1) == []      # not yet
    [deleted] = svc.sweep(video["end_ts"] + 86_400_000 + 1)
    assert deleted["kind"] == K.VIDEO_DELETED
    assert deleted["data"] == {"table_id": "roulette-1", "chain_id": "c1", "n": 1, "sha256": video["sha256"],
                               "reason": "retention"}
    assert not (tmp_path / "video" / "roulette-1" / "roulette-1.c1.1.mp4").exists()
    assert svc.clip_file("roulette-1", "c1", 1) is None
    assert [e["data"]["sha256"] for e in entries(store, K.ROUND_VIDEO)] == [video["sha256"]]
    # A restarted edge knows from its journal that the clip is gone: nothing is deleted twice.
    again = service(tmp_path, store, retention_days=1)
    assert again.sweep(video["end_ts"] + 10 * 86_400_000) == []


async def test_budget_reached_stops_recording_and_says_so(tmp_path, store):
    svc = service(tmp_path, store, budget_bytes=40_000)   # less than one round's reserve
    svc.round_opened("roulette-1", "c1", 1)
    feed(svc, Camera(), 5)
    assert await svc.round_ending("roulette-1", "c1", 1) is None
    [failed] = entries(store, K.VIDEO_FAILED)
    assert failed["data"] == {"table_id": "roulette-1", "chain_id": "c1", "n": 1, "reason": "budget_reached"}
    from edge_agent.evidence import metrics as M
    assert M.STORAGE_BUDGET._value.get() == 40_000


async def test_disk_full_mid_round_fails_the_clip_not_the_round(tmp_path, store, monkeypatch):
    from edge_agent.evidence import spool

    svc = service(tmp_path, store)
    cam = Camera()
    svc.round_opened("roulette-1", "c1", 1)
    feed(svc, cam, 5)

    def full(self, *a):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool.Spool, "write", full)
    feed(svc, cam, 5)
    e = await svc.round_ending("roulette-1", "c1", 1)
    assert e["kind"] == K.VIDEO_FAILED and e["data"]["reason"] == "disk_full"
    assert list((tmp_path / "video" / "roulette-1").iterdir()) == []   # nothing half-written kept


def test_a_process_killed_mid_clip_leaves_a_clip_that_is_finished_at_restart(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tests.video.crash_child", str(tmp_path), "23"],
                         check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == -signal.SIGKILL and "RECORDED" in out.stdout, out.stderr
    store = JournalStore(tmp_path / "journal.db")
    try:
        restarted = service(tmp_path, store)
        kinds = [e["kind"] for e in restarted.recover()]
        assert kinds == [K.ROUND_VIDEO, K.VIDEO_RECOVERED]
        [video] = entries(store, K.ROUND_VIDEO)
        [recovered] = entries(store, K.VIDEO_RECOVERED)
    finally:
        store.close()
    assert recovered["data"]["action"] == "finished"
    path = tmp_path / "video" / "roulette-1" / "roulette-1.c1.1.mp4"
    assert (video["data"]["sha256"], video["data"]["bytes"]) == sha256_file(path)
    with av.open(str(path)) as c:
        assert len(list(c.decode(video=0))) == 23   # every frame written before the kill


async def test_crash_mid_clip_with_a_torn_last_frame_is_finished_at_restart(tmp_path, store):
    svc = service(tmp_path, store)
    cam = Camera()
    svc.round_opened("roulette-1", "c1", 1)
    feed(svc, cam, 23)
    spool_path = tmp_path / "video" / "roulette-1" / "roulette-1.c1.1.spool"
    # The process dies: no round end, and the last record is torn mid-write.
    spool_path.write_bytes(spool_path.read_bytes() + b"\x00\x00\x00\x00\x00\x00\x10\x00\x01\x00\x00\x40\x00garbage")
    restarted = service(tmp_path, store)
    out = restarted.recover()
    assert [e["kind"] for e in out] == [K.ROUND_VIDEO, K.VIDEO_RECOVERED]
    assert out[1]["data"]["action"] == "finished"
    path = tmp_path / "video" / "roulette-1" / "roulette-1.c1.1.mp4"
    assert (out[0]["data"]["sha256"], out[0]["data"]["bytes"]) == sha256_file(path)
    with av.open(str(path)) as c:
        assert len(list(c.decode(video=0))) == 23
    assert not spool_path.exists()


async def test_crash_before_any_picture_is_discarded_and_journaled(tmp_path, store):
    svc = service(tmp_path, store)
    svc.round_opened("roulette-1", "c2", 4)   # no frame yet
    restarted = service(tmp_path, store)
    [e] = restarted.recover()
    assert e["kind"] == K.VIDEO_RECOVERED
    assert e["data"] == {"table_id": "roulette-1", "chain_id": "c2", "n": 4, "action": "discarded",
                         "reason": "no decodable picture"}
    assert json.loads(json.dumps(e["data"])) == e["data"]
    assert list((tmp_path / "video" / "roulette-1").iterdir()) == []
