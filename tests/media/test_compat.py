"""Every third-party internal the media path uses (edge_agent/media/compat), exercised on real
aiortc/aioice/pylibsrtp objects of the pinned versions: a connected WHEP-style pair on loopback."""
from __future__ import annotations

import asyncio
import fractions
from importlib.metadata import version

import aioice.ice
import av
import pylibsrtp
import pytest
from aiortc import RTCConfiguration, RTCSessionDescription
from aiortc.rtp import RtcpByePacket

from edge_agent.media import peer as peers
from edge_agent.media import rtc_tweaks
from edge_agent.media.compat import aioice as aioice_compat
from edge_agent.media.compat import aiortc as aiortc_compat
from edge_agent.media.compat import pylibsrtp as srtp_compat


def test_pinned_versions_are_the_tested_ones() -> None:
    assert version("aiortc") == aiortc_compat.TESTED_VERSION
    assert version("aioice") == aioice_compat.TESTED_VERSION
    assert version("pylibsrtp") == srtp_compat.TESTED_VERSION


def test_checks_fail_loudly_on_a_missing_internal() -> None:
    class Renamed:
        def __init__(self) -> None:
            self._something_else = 1

    with pytest.raises(aiortc_compat.CompatError, match="_codecs"):
        aiortc_compat._set_in_init(Renamed, "_codecs")
    with pytest.raises(aiortc_compat.CompatError, match="_packetize"):
        aiortc_compat._has(Renamed, "_packetize")
    aiortc_compat.check()
    aioice_compat.check()
    srtp_compat.check()


def test_h264_payloads_and_srtp_handles() -> None:
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt, enc.time_base = 320, 180, "yuv420p", fractions.Fraction(1, 25)
    enc.options = {"tune": "zerolatency", "preset": "ultrafast"}
    enc.open()
    frame = av.VideoFrame(320, 180, "yuv420p")
    frame.pts = 0
    data = b"".join(bytes(p) for p in [*enc.encode(frame), *enc.encode(None)])
    payloads = aiortc_compat.h264_payloads(data)
    assert payloads and all(len(p) <= 1300 for p in payloads)
    assert sum(len(p) for p in payloads) >= len(data) * 0.9
    policy = pylibsrtp.Policy(key=bytes(30), ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    session = pylibsrtp.Session(policy=policy)
    assert srtp_compat.srtp_ctx(session) != 0 and srtp_compat.protect_fn() != 0


async def test_accessors_on_a_connected_pair() -> None:
    peers.set_announce_addresses(["127.0.0.1"])
    assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
    client = rtc_tweaks.new_peer_connection(RTCConfiguration(iceServers=[]))
    client.addTransceiver("video", direction="recvonly")
    await client.setLocalDescription(await client.createOffer())
    edge = await peers.answer(client.localDescription.sdp)
    try:
        await client.setRemoteDescription(RTCSessionDescription(sdp=edge.answer_sdp, type="answer"))
        for _ in range(200):
            if edge.pc.connectionState == "connected":
                break
            await asyncio.sleep(0.025)
        assert edge.pc.connectionState == "connected"
        t = edge.pc.getTransceivers()[0]
        codecs = aiortc_compat.negotiated_codecs(t)
        assert [c.mimeType for c in codecs] == ["video/H264"]
        srtp, conn = edge.transport_handles(edge.video)
        assert isinstance(srtp, pylibsrtp.Session) and isinstance(conn, aioice.ice.Connection)
        pair = aioice_compat.nominated_pair(conn)
        assert pair is not None and pair.remote_addr[0] == "127.0.0.1" and pair.protocol.transport is not None
        assert aioice_compat.nominated_pairs(conn) == [pair]
        assert aioice_compat.nominated_by_component(conn).get(1) is pair  # the live mapping the fan-out reads
        assert isinstance(aiortc_compat.sender_ssrc(edge.video), int)
        assert aiortc_compat.sender_cname(edge.video)
        aiortc_compat.note_sender_report(edge.video, 1234, 5.0)
        assert edge.video._RTCRtpSender__lsr == 1234  # type: ignore[attr-defined]
        assert aiortc_compat.sender_rtt(edge.video) is None  # no RR yet
        assert aiortc_compat.rtcp_started(edge.video).is_set()  # the parked loop (rtcp.park_sender_rtcp) ran
        assert isinstance(aiortc_compat.rtcp_exited(edge.video), asyncio.Event)
        seen: list[object] = []

        def make(original: object) -> object:
            async def handle(packet: object) -> None:
                seen.append(packet)
            return handle

        aiortc_compat.wrap_rtcp_handler(edge.video, make)
        await edge.video._handle_rtcp_packet(RtcpByePacket(sources=[1]))
        assert len(seen) == 1
        await aiortc_compat.send_rtcp(edge.video, [RtcpByePacket(sources=[aiortc_compat.sender_ssrc(edge.video)])])
        # A consent check with our retransmission count answers on the live pair.
        response, _ = await aioice_compat.stun_request(pair, conn, 1)
        assert response is not None
        calls: list[object] = []
        aioice_compat.replace_consent(conn, lambda c: calls.append(c))
        conn.query_consent()
        assert calls == [conn]
    finally:
        await edge.pc.close()
        await client.close()
        peers.set_announce_addresses([])
    assert aioice.ice.get_host_addresses is aioice_compat._original_host_addresses
