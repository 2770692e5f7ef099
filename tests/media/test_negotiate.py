"""Codec choice from offers as players send them: the answer names only H.264 (the offer's own
payload type and profile) and Opus, whatever the order; no usable H.264 is refused."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_agent.media import negotiate, peer

CHROMIUM = (Path(__file__).parent / "data" / "chromium_default_offer.sdp").read_text()  # VP8 first, no prefs


def _video_only(offer: str, keep: set[str]) -> str:
    """`offer` with the video m-line reduced to the payload types in `keep`, in that m-line order."""
    out = []
    for ln in offer.splitlines():
        if ln.startswith("m=video"):
            head = ln.split()[:3]
            pts = [p for p in ln.split()[3:] if p in keep]
            ln = " ".join(head + pts)
        m = re.match(r"a=(rtpmap|fmtp|rtcp-fb):(\d+) ", ln)
        if m and int(m.group(2)) < 200 and ln and _in_video(offer, m.group(2)) and m.group(2) not in keep:
            continue
        out.append(ln)
    return "\r\n".join(out) + "\r\n"


def _in_video(offer: str, pt: str) -> bool:
    video = offer.split("m=video", 1)[1].split("m=audio", 1)[0]
    return f"rtpmap:{pt} " in video


def _m_line(sdp: str, kind: str) -> list[str]:
    return next(ln for ln in sdp.splitlines() if ln.startswith(f"m={kind}")).split()[3:]


def test_chromium_default_offer_picks_constrained_baseline_under_its_pt() -> None:
    c = negotiate.choose(CHROMIUM)
    assert c.video.mimeType == "video/H264" and c.video.payloadType == 108  # 42e01f, packetization-mode=1
    assert c.video.parameters["profile-level-id"] == "42e01f"
    assert c.audio is not None and c.audio.mimeType == "audio/opus" and c.audio.payloadType == 111


async def test_answer_to_vp8_first_offer_carries_only_what_the_edge_sends() -> None:
    p = await peer.answer(CHROMIUM)
    try:
        assert _m_line(p.answer_sdp, "video") == ["108"]
        assert _m_line(p.answer_sdp, "audio") == ["111"]
        assert "VP8" not in p.answer_sdp and "VP9" not in p.answer_sdp and "rtx" not in p.answer_sdp
        assert p.payload_type(p.video) == 108 and p.payload_type(p.audio) == 111
    finally:
        await p.pc.close()


async def test_h264_last_and_main_profile_only_offers() -> None:
    # H.264 last in the list (VP8, VP9 before it): still H.264 under the offer's payload type.
    reordered = CHROMIUM.replace("m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 35 36 37 38 102 103 104 107 108 109",
                                 "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 35 36 37 38 104 107 102 103 108 109")
    assert negotiate.choose(reordered).video.payloadType == 108
    # Only Main profile H.264 (aiortc itself lists baseline profiles only): answered as offered.
    main_only = _video_only(CHROMIUM, {"96", "116"})
    p = await peer.answer(main_only)
    try:
        assert _m_line(p.answer_sdp, "video") == ["116"]
        assert "profile-level-id=4d001f" in p.answer_sdp
    finally:
        await p.pc.close()


@pytest.mark.parametrize("keep", [{"96", "98"}, {"104", "114"}])  # VP8+VP9 only; H.264 packetization-mode 0 only
def test_no_usable_h264_is_refused(keep: set[str]) -> None:
    with pytest.raises(negotiate.UnusableOffer) as e:
        negotiate.choose(_video_only(CHROMIUM, keep))
    assert e.value.code == "no_h264"


def test_garbage_is_bad_sdp() -> None:
    with pytest.raises(negotiate.UnusableOffer) as e:
        negotiate.choose("v=0\r\nm=video nonsense\r\n")
    assert e.value.code in ("bad_sdp", "no_h264", "no_video")


def test_only_formats_on_the_m_line_count() -> None:
    """H.264 rtpmap lines left behind after its payload types were taken off the m-line offer nothing."""
    stripped = CHROMIUM.replace(" 102 103 104 107 108 109 114 115 116 117 39 40 41 42 43 44", "")
    with pytest.raises(negotiate.UnusableOffer) as e:
        negotiate.choose(stripped)
    assert e.value.code == "no_h264"


async def test_playout_delay_answered_under_the_offers_id_only_when_offered() -> None:
    # Chromium lists playout-delay as extmap 5: the answer names it under 5 in the video section,
    # and every video packet carries min = max = 0 (one-byte header, RFC 8285).
    p = await peer.answer(CHROMIUM)
    try:
        video = p.answer_sdp.split("m=video", 1)[1].split("m=audio", 1)[0]
        assert f"a=extmap:5 {negotiate.PLAYOUT_DELAY_URI}\r\n" in video
        assert negotiate.PLAYOUT_DELAY_URI not in p.answer_sdp.split("m=audio", 1)[1]
        assert p.video_ext == bytes([0xBE, 0xDE, 0, 1, 0x52, 0, 0, 0])
    finally:
        await p.pc.close()
    without = "".join(ln for ln in CHROMIUM.splitlines(keepends=True) if "playout-delay" not in ln)
    p = await peer.answer(without)
    try:
        assert negotiate.PLAYOUT_DELAY_URI not in p.answer_sdp and p.video_ext == b""
    finally:
        await p.pc.close()
