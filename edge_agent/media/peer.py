"""aiortc plumbing for a sendonly WHEP peer: H.264-first codec choice, ICE addresses, and access to
the DTLS-derived SRTP session and nominated ICE pair once connected."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aioice.ice
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from edge_agent.media import rtc_tweaks
from edge_agent.media.rtcp import park_sender_rtcp

rtc_tweaks.install_lazy_estimator()

_original_host_addresses = aioice.ice.get_host_addresses


def set_announce_addresses(addresses: list[str]) -> None:
    """Host candidates on exactly these local addresses (aioice otherwise drops 127.0.0.1)."""
    if addresses:
        aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: list(addresses)
    else:
        aioice.ice.get_host_addresses = _original_host_addresses


class IdleTrack(MediaStreamTrack):
    """A track aiortc's sender waits on forever: the fan-out sends the RTP itself."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._stopped = asyncio.Event()

    async def recv(self) -> Any:
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        self._stopped.set()
        super().stop()


class BadOffer(ValueError):
    pass


@dataclass
class Peer:
    pc: RTCPeerConnection
    video: RTCRtpSender
    audio: RTCRtpSender | None
    answer_sdp: str

    def payload_type(self, sender: RTCRtpSender) -> int:
        # aiortc sends only the first negotiated codec; so do we.
        t = next(t for t in self.pc.getTransceivers() if t.sender is sender)
        return t._codecs[0].payloadType

    def transport_handles(self, sender: RTCRtpSender) -> tuple[Any, Any]:
        """(SRTP session, aioice Connection) of the sender's DTLS transport."""
        dtls = sender.transport
        return dtls._tx_srtp, dtls.transport._connection


def _h264_first() -> list[Any]:
    caps = RTCRtpSender.getCapabilities("video").codecs
    h264 = [c for c in caps if c.mimeType.lower() == "video/h264"
            and (c.parameters or {}).get("packetization-mode") in ("1", 1)]
    rtx = [c for c in caps if c.mimeType.lower() == "video/rtx"]
    return h264 + rtx


async def answer(offer_sdp: str) -> Peer:
    """Build the sendonly answer (all candidates gathered, as WHEP wants). Raises BadOffer."""
    if not offer_sdp.lstrip().startswith("v=0") or "m=video" not in offer_sdp:
        raise BadOffer("offer must be an SDP with a video m-line")
    pc = rtc_tweaks.new_peer_connection(RTCConfiguration(iceServers=[]))
    try:
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as exc:  # aiortc raises ValueError/KeyError/... on malformed SDP
            raise BadOffer(f"unusable SDP offer: {exc}") from exc
        video_sender = audio_sender = None
        for t in pc.getTransceivers():
            if t.kind == "video" and video_sender is None:
                prefs = _h264_first()
                t.setCodecPreferences(prefs)
                video_sender = pc.addTrack(IdleTrack("video"))
            elif t.kind == "audio" and audio_sender is None:
                audio_sender = pc.addTrack(IdleTrack("audio"))
        if video_sender is None:
            raise BadOffer("no video m-line")
        for sender in (video_sender, audio_sender):
            if sender is not None:
                park_sender_rtcp(sender)  # SRs come from edge_agent.media.rtcp
        rtc_tweaks.robust_consent(pc)
        try:
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            raise BadOffer(f"cannot answer: {exc}") from exc
        sdp = pc.localDescription.sdp
        if "H264" not in sdp:
            raise BadOffer("the offer has no H.264 (packetization-mode=1)")
        return Peer(pc=pc, video=video_sender, audio=audio_sender, answer_sdp=sdp)
    except BaseException:
        await pc.close()
        raise
