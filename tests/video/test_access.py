"""Access to round clips: the regulator's round view plays the clip in the browser (headless
Chromium, `video.currentTime` advancing) and offers it for download; the clip is served with
Range (seeking); every fetch is on the record; a player gets the clip of a round they played in
and a 403 for anyone else's. The cloud receives the `round.video` entry, never the clip."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from contract import tokens
from edge_agent.api.app import create_app
from edge_agent.casino import Casino
from edge_agent.evidence.config import VideoConfig
from edge_agent.evidence.routes import player_clip_router
from edge_agent.evidence.service import EvidenceService
from edge_agent.regulator.router import regulator_router
from edge_agent.sync.residency import ResidencyFilter
from tests.edge.conftest import PUBLIC_PEM, SIGNING_KEY, bet_when_open, edge_config, fund, player_token
from tests.video.support import Camera, media_config

CHROMIUM = "/usr/bin/chromium"


def token(jur: str = "MT") -> str:
    return tokens.issue(SIGNING_KEY, "mga-inspector-1", "regulator", jur)


async def _casino_with_clips(tmp: Path) -> tuple[Casino, list[dict[str, Any]]]:
    c = Casino(edge_config(tmp))
    await c.start(run_tables=False)
    svc = EvidenceService(VideoConfig(dir=tmp / "video"), media_config("roulette-1"), c.engine.record, c.store.query)
    c.evidence = svc
    alice, bob = c.ensure_player("alice"), c.ensure_player("bob")
    await fund(c, alice, 10_000)
    await fund(c, bob, 10_000)
    cam = Camera()
    videos = []
    for who in (alice, bob):
        r = c.open_round("roulette-1")
        svc.round_opened("roulette-1", r.chain_id, r.n)
        await bet_when_open(c, who, "roulette-1", "red", 100)
        for pts, key, payloads in cam.frames(75):   # 3 s of picture
            svc.on_frame("roulette-1", 0, pts, key, payloads)
        videos.append(await svc.round_ending("roulette-1", r.chain_id, r.n))
        await c.settle_round("roulette-1")
    return c, videos


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Casino, list[dict[str, Any]]]]:
    c, videos = await _casino_with_clips(tmp_path)
    app = create_app(c, extra_routers=[regulator_router(c, PUBLIC_PEM)])
    app.include_router(player_clip_router(app.state.edge))
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", c, videos
    finally:
        server.should_exit = True
        await task
        await c.stop()
        c.close()


def _path(v: dict[str, Any]) -> str:
    d = v["data"]
    return f"{d['table_id']}/{d['chain_id']}/{d['n']}"


async def test_regulator_round_view_plays_the_clip_in_chromium(served):
    from playwright.async_api import async_playwright

    base, _c, videos = served
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                                          "--autoplay-policy=no-user-gesture-required"])
        try:
            ctx = await browser.new_context()
            await ctx.add_cookies([{"name": "regulator_token", "value": token(), "url": f"{base}/regulator"}])
            page = await ctx.new_page()
            await page.goto(f"{base}/regulator/rounds/{_path(videos[0])}")
            assert await page.locator("a", has_text="Download the clip").count() == 1
            video = page.locator("video#round-video")
            await video.evaluate("v => { v.muted = true; return v.play(); }")
            await page.wait_for_function("document.querySelector('#round-video').currentTime > 0.5", timeout=15_000)
            assert await video.evaluate("v => v.duration") == pytest.approx(3.0, abs=0.5)
            assert await video.evaluate("v => v.videoWidth") == 320
        finally:
            await browser.close()


async def test_clip_download_with_range_is_the_journaled_bytes_and_on_the_record(served):
    base, c, videos = served
    v = videos[0]["data"]
    reg = {"Authorization": f"Bearer {token()}"}
    async with httpx.AsyncClient(base_url=base) as http:
        full = await http.get(f"/regulator/api/rounds/{_path(videos[0])}/video", params={"download": "1"}, headers=reg)
        assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
        assert "attachment" in full.headers["content-disposition"]
        assert full.headers["x-clip-sha256"] == v["sha256"] and len(full.content) == v["bytes"]
        import hashlib
        assert hashlib.sha256(full.content).hexdigest() == v["sha256"]
        part = await http.get(f"/regulator/api/rounds/{_path(videos[0])}/video", headers={**reg, "Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == full.content[100:200]
        assert (await http.get(f"/regulator/api/rounds/{_path(videos[0])}/video")).status_code == 401
        other = {"Authorization": f"Bearer {token(jur='ON')}"}
        assert (await http.get(f"/regulator/api/rounds/{_path(videos[0])}/video", headers=other)).status_code == 403
        detail = (await http.get(f"/regulator/api/rounds/{_path(videos[0])}", headers=reg)).json()
        assert detail["video"]["sha256"] == v["sha256"] and detail["video"]["kept"] is True
    await c.engine.durable()
    queries = [e["data"] for e in c.store.read(1) if e["kind"] == "regulator.query"]
    assert [q["params"].get("range") for q in queries if q["route"].endswith("/video")][:2] == [None, "bytes=100-199"]


async def test_a_player_sees_the_clip_of_a_round_they_played_in_only(served):
    base, _c, videos = served
    alice = {"Authorization": f"Bearer {player_token('alice')}"}
    bob = {"Authorization": f"Bearer {player_token('bob')}"}
    carol = {"Authorization": f"Bearer {player_token('carol')}"}
    async with httpx.AsyncClient(base_url=base) as http:
        mine = await http.get(f"/v1/rounds/{_path(videos[0])}/video", headers=alice)
        assert mine.status_code == 200 and mine.headers["x-clip-sha256"] == videos[0]["data"]["sha256"]
        theirs = await http.get(f"/v1/rounds/{_path(videos[1])}/video", headers=alice)
        assert theirs.status_code == 403 and theirs.json()["error"]["code"] == "forbidden"
        assert (await http.get(f"/v1/rounds/{_path(videos[1])}/video", headers=bob)).status_code == 200
        assert (await http.get(f"/v1/rounds/{_path(videos[0])}/video", headers=carol)).status_code == 403
        assert (await http.get(f"/v1/rounds/{_path(videos[0])}/video")).status_code == 401


def test_the_cloud_gets_the_round_video_entry_and_nothing_of_the_clip():
    from edge_agent.config import ResidencyPolicy

    strict = ResidencyFilter(ResidencyPolicy(allow_kinds=["round.*", "video.*", "vision.*", "bet.placed"]))
    data = {"table_id": "t", "chain_id": "c", "n": 1, "sha256": "ab" * 32, "bytes": 10, "start_ts": 1, "end_ts": 2,
            "container": "mp4", "rung": "360p"}
    assert strict.apply("round.video", data) == (data, [])
    assert set(data) == {"table_id", "chain_id", "n", "sha256", "bytes", "start_ts", "end_ts", "container", "rung"}


async def test_regulator_export_zip_with_video_verifies(served, tmp_path):
    import io
    import zipfile

    from contract.bundle import verify_bundle

    base, _c, videos = served
    async with httpx.AsyncClient(base_url=base) as http:
        z = await http.get("/regulator/api/export", params={"with_video": "1"},
                           headers={"Authorization": f"Bearer {token()}"})
    assert z.status_code == 200
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "unzipped")
    folder = next((tmp_path / "unzipped").iterdir())
    assert sum(n.endswith(".mp4") for n in names) == len(videos)
    report = verify_bundle(folder)
    assert report.ok, report.problems
