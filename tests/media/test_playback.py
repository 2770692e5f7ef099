"""Studio -> SRT -> edge transcode -> WHEP -> aiortc player, and the feed up/down callbacks."""
from __future__ import annotations

import asyncio
import re

import av
import httpx
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci
from prometheus_client import REGISTRY

from edge_agent.media.client import play
from edge_agent.media.timestamp import read_capture_ts


async def test_player_decodes_live_table_and_feed_callbacks(edge_factory, studio, http: httpx.AsyncClient) -> None:
    edge = await edge_factory()
    svc = edge.service
    assert not svc.is_live("t1")
    proc = studio("t1", edge.srt_port)
    assert await edge.wait(lambda: svc.is_live("t1")), "feed never came up"
    assert edge.ups == ["t1"]

    player = await play(http, f"{edge.base}/whep/t1")
    try:
        assert await edge.wait(lambda: "video" in player.tracks)
        frames: list[av.VideoFrame] = []
        for _ in range(20):
            frames.append(await asyncio.wait_for(player.tracks["video"].recv(), 10))
        assert svc.viewer_count() == 1
        assert player.etag and player.location.startswith(f"{edge.base}/whep/t1/")
        # Trickle PATCH: a candidate of the current ICE session is taken (204), an ICE restart
        # (new ufrag) is refused with 422 as the draft allows.
        ufrag = re.search(r"a=ice-ufrag:(\S+)", player.pc.localDescription.sdp).group(1)
        frag = {"Content-Type": "application/trickle-ice-sdpfrag"}
        cand = "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host"
        r = await http.patch(player.location, content=f"a=ice-ufrag:{ufrag}\r\n{cand}\r\n", headers=frag)
        assert r.status_code == 204, r.text
        r = await http.patch(player.location, content="a=ice-ufrag:zzzz\r\na=ice-pwd:yyyyyyyyyyyyyyyyyyyyyy\r\n",
                             headers=frag)
        assert r.status_code == 422
        # Decoded pictures of the top rung, carrying the studio's capture clock.
        assert {(f.width, f.height) for f in frames} == {(640, 360)}
        stamps = [read_capture_ts(f) for f in frames]
        assert all(s is not None for s in stamps)
        assert stamps == sorted(stamps) and stamps[-1] > stamps[0]
        audio = await asyncio.wait_for(player.tracks["audio"].recv(), 10)
        assert audio.sample_rate == 48000

        # The player reports a low bandwidth estimate (REMB over SRTCP, as a congested browser
        # would): the edge moves it down one rung, at a keyframe, so the decoder gets 320x180.
        await _send_remb(player, 300_000)
        sizes = []
        for _ in range(60):
            f = await asyncio.wait_for(player.tracks["video"].recv(), 10)
            sizes.append((f.width, f.height))
            if sizes[-1] == (320, 180):
                break
        assert sizes[-1] == (320, 180), sizes
        session = next(iter(svc.tables["t1"].sessions.values()))
        assert session.rung == 1 and svc.tables["t1"].fanout.switches == [(0, 1)]
    finally:
        r = await http.delete(player.location)
        await player.pc.close()
    assert r.status_code == 200
    assert await edge.wait(lambda: svc.viewer_count() == 0, 5)

    # Killing the studio encoder drops the feed: the casino hears feed_down once.
    proc.kill()
    proc.wait()
    assert await edge.wait(lambda: len(edge.downs) == 1, 10)
    assert edge.downs[0][0] == "t1"
    assert not svc.is_live("t1")
    r = await http.post(f"{edge.base}/whep/t1", content=_offer_sdp(), headers={"Content-Type": "application/sdp"})
    assert r.status_code == 409 and "retry-after" in r.headers

    # A new feed on the same listener brings the table back.
    studio("t1", edge.srt_port)
    assert await edge.wait(lambda: svc.is_live("t1")), "feed did not come back"
    assert edge.ups == ["t1", "t1"]


async def _send_remb(player, bitrate: int) -> None:
    sdp = player.pc.remoteDescription.sdp
    video = sdp[sdp.index("m=video"):]
    ssrc = int(re.search(r"a=ssrc:(\d+)", video).group(1))
    receiver = next(t.receiver for t in player.pc.getTransceivers() if t.kind == "video")
    packet = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(bitrate, [ssrc]))
    await receiver._send_rtcp(packet)


def _offer_sdp() -> str:
    from tests.media.test_whep import OFFER

    return OFFER


async def test_player_served_by_fanout_worker_process(edge_factory, studio, http: httpx.AsyncClient) -> None:
    edge = await edge_factory(workers=1)
    svc = edge.service
    studio("t1", edge.srt_port, "--no-audio")
    assert await edge.wait(lambda: svc.is_live("t1")), "feed never came up"
    player = await play(http, f"{edge.base}/whep/t1", audio=False)
    try:
        assert await edge.wait(lambda: "video" in player.tracks)
        frames = [await asyncio.wait_for(player.tracks["video"].recv(), 10) for _ in range(10)]
        assert all(read_capture_ts(f) is not None for f in frames)
        # The session lives in the worker: none in the serving process, one in the count.
        assert svc.viewer_count() == 1 and not svc.tables["t1"].sessions
        # ... and its metrics are scraped from the serving process all the same.
        sid = player.location.rstrip("/").rsplit("/", 1)[1]
        rung = svc.config.ladder[svc.config.start_rung].name
        assert await edge.wait(lambda: REGISTRY.get_sample_value("media_viewer_rung", {"session": sid}) is not None, 10)
        assert REGISTRY.get_sample_value("media_viewer_rung", {"session": sid}) == svc.config.start_rung
        assert await edge.wait(lambda: REGISTRY.get_sample_value("media_viewer_bitrate_bps", {"session": sid}), 10)
        # The count holds over the serving process's own 2 s rung refresh (which must not reset it).
        seen = set()
        for _ in range(30):
            seen.add(REGISTRY.get_sample_value("media_viewers", {"table": "t1", "rung": rung}))
            await asyncio.sleep(0.1)
        assert seen == {1}, seen
    finally:
        r = await http.delete(player.location)
        await player.pc.close()
    assert r.status_code == 200
    assert await edge.wait(lambda: svc.viewer_count() == 0, 5)
    assert await edge.wait(lambda: REGISTRY.get_sample_value("media_viewer_rung", {"session": sid}) is None, 5)
