"""Export bundles with video: `edge-agent export --with-video` lists the clips, `edge-agent verify`
checks each against its round's `round.video` hash and names the round whose clip differs."""
from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from edge_agent.casino import Casino
from edge_agent.cli import app
from edge_agent.evidence.config import VideoConfig
from edge_agent.evidence.service import EvidenceService
from tests.edge.conftest import edge_config
from tests.video.support import Camera, media_config


async def recorded_journal(tmp_path: Path, rounds: int, retention_days: float = 90) -> tuple[Path, Path, list]:
    c = Casino(edge_config(tmp_path))
    await c.start(run_tables=False)
    svc = EvidenceService(VideoConfig(dir=tmp_path / "video", retention_days=retention_days),
                          media_config("roulette-1"), c.engine.record, c.store.query)
    cam = Camera()
    videos = []
    for _ in range(rounds):
        r = c.open_round("roulette-1")
        svc.round_opened("roulette-1", r.chain_id, r.n)
        for pts, key, payloads in cam.frames(12):
            svc.on_frame("roulette-1", 0, pts, key, payloads)
        videos.append(await svc.round_ending("roulette-1", r.chain_id, r.n))
        await c.settle_round("roulette-1")
    if retention_days < 1:
        svc.sweep(videos[0]["data"]["end_ts"] + 86_400_000)
    await c.stop()
    c.close()
    return tmp_path / "journal.db", tmp_path / "video", videos


def run(*args: str):
    return CliRunner().invoke(app, list(args))


async def test_bundle_with_video_verifies_and_names_the_round_of_a_changed_byte(tmp_path):
    db, vdir, videos = await recorded_journal(tmp_path, 3)
    out = tmp_path / "bundle"
    res = run("export", "--db", str(db), "--out", str(out), "--with-video", "--video-dir", str(vdir))
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    names = [f"roulette-1.{v['data']['chain_id']}.{v['data']['n']}.mp4" for v in videos]
    assert manifest["videos"] == {n: v["data"]["sha256"] for n, v in zip(names, videos)}
    assert sorted(p.name for p in (out / "video").iterdir()) == sorted(names)
    ok = run("verify", str(out))
    assert ok.exit_code == 0, ok.output

    clip = out / "video" / names[1]
    raw = bytearray(clip.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    clip.write_bytes(bytes(raw))
    bad = run("verify", str(out))
    assert bad.exit_code == 1
    report = json.loads(bad.stdout.splitlines()[0])
    assert report["first_bad_seq"] == videos[1]["seq"]
    assert f"round roulette-1/{videos[1]['data']['chain_id']}/2" in report["problems"][0]["reason"]


async def test_a_clip_past_retention_is_missing_from_the_bundle_and_its_entry_is_not(tmp_path):
    db, vdir, videos = await recorded_journal(tmp_path, 2, retention_days=0.5)
    out = tmp_path / "bundle"
    assert run("export", "--db", str(db), "--out", str(out), "--with-video", "--video-dir", str(vdir)).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    # The sweep ran a day after the first clip's end: both clips are past a half-day retention.
    assert manifest["videos"] == {}
    lines = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    assert [e["data"]["sha256"] for e in lines if e["kind"] == "round.video"] == [v["data"]["sha256"] for v in videos]
    assert sum(e["kind"] == "video.deleted" for e in lines) == 2
    assert run("verify", str(out)).exit_code == 0


async def test_the_clip_check_printed_in_regulators_md_agrees(tmp_path):
    import re

    doc = (Path(__file__).resolve().parents[2] / "docs" / "REGULATORS.md").read_text()
    code = next(c for c in re.findall(r"```python\n(.*?)```", doc, re.DOTALL) if "def verify_clips" in c)
    ns: dict = {}
    exec(compile(code, "REGULATORS.md", "exec"), ns)  # noqa: S102 - our own document
    db, vdir, videos = await recorded_journal(tmp_path, 2)
    out = tmp_path / "bundle"
    assert run("export", "--db", str(db), "--out", str(out), "--with-video", "--video-dir", str(vdir)).exit_code == 0
    assert ns["verify_clips"](str(out)) == "OK clips"
    clip = out / "video" / f"roulette-1.{videos[0]['data']['chain_id']}.1.mp4"
    clip.write_bytes(clip.read_bytes()[:-1] + bytes([clip.read_bytes()[-1] ^ 0xFF]))
    assert ns["verify_clips"](str(out)) == f"BAD seq {videos[0]['seq']}: video/{clip.name} does not match its round.video hash"
