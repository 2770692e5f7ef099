"""aiortc plumbing for a sendonly WHEP peer: the answer's codecs (edge_agent.media.negotiate), ICE
addresses, and access to the DTLS-derived SRTP session and nominated ICE pair once connected."""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from edge_agent.media import negotiate, rtc_tweaks
from edge_agent.media.compat import aioice as aioice_compat
from edge_agent.media.compat import aiortc as aiortc_compat
from edge_agent.media.rtcp import park_sender_rtcp

rtc_tweaks.install_lazy_estimator()

def set_announce_addresses(addresses: list[str]) -> None:
    """Host candidates on exactly these local addresses (aioice otherwise drops 127.0.0.1)."""
    aioice_compat.set_host_addresses(addresses)


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


BadOffer = negotiate.UnusableOffer


@dataclass
class Peer:
    pc: RTCPeerConnection
    video: RTCRtpSender
    audio: RTCRtpSender | None
    answer_sdp: str
    # RTP header extension block every video packet carries (playout delay 0 when the offer
    # lists the extension), or b"".
    video_ext: bytes = b""

    def payload_type(self, sender: RTCRtpSender) -> int:
        # The answer holds one codec per m-line (negotiate.choose): the offer's payload type for it.
        t = next(t for t in self.pc.getTransceivers() if t.sender is sender)
        return aiortc_compat.negotiated_codecs(t)[0].payloadType

    def transport_handles(self, sender: RTCRtpSender) -> tuple[Any, Any]:
        """(SRTP session, aioice Connection) of the sender's DTLS transport."""
        dtls = sender.transport
        return aiortc_compat.tx_srtp(dtls), aiortc_compat.ice_connection(dtls.transport)


def _for_aiortc(offer_sdp: str, choice: negotiate.Choice) -> str:
    """aiortc refuses an offer none of whose video codecs it lists (it lists constrained baseline
    and baseline H.264 only): present the chosen Main/High entry to it as constrained baseline.
    The answer then carries the offer's own parameters (set after negotiation)."""
    pt = choice.video.payloadType
    return re.sub(rf"(a=fmtp:{pt} [^\r\n]*profile-level-id=)[0-9a-fA-F]{{6}}", r"\g<1>42e01f", offer_sdp)


async def answer(offer_sdp: str) -> Peer:
    """Build the sendonly answer (all candidates gathered, as WHEP wants). Raises BadOffer."""
    if not offer_sdp.lstrip().startswith("v=0") or "m=video" not in offer_sdp:
        raise BadOffer("bad_sdp", "offer must be an SDP with a video m-line")
    choice = negotiate.choose(offer_sdp)
    pc = rtc_tweaks.new_peer_connection(RTCConfiguration(iceServers=[]))
    try:
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=_for_aiortc(offer_sdp, choice), type="offer"))
        except Exception as exc:  # aiortc raises ValueError/KeyError/... on malformed SDP
            raise BadOffer("bad_sdp", f"unusable SDP offer: {exc}") from exc
        video_sender = audio_sender = None
        for t in pc.getTransceivers():
            if t.kind == "video" and video_sender is None and choice.video_mid in (None, t.mid):
                aiortc_compat.set_negotiated_codecs(t, [choice.video])
                video_sender = pc.addTrack(IdleTrack("video"))
            elif (t.kind == "audio" and audio_sender is None and choice.audio is not None
                  and choice.audio_mid in (None, t.mid)):
                aiortc_compat.set_negotiated_codecs(t, [choice.audio])
                audio_sender = pc.addTrack(IdleTrack("audio"))
        if video_sender is None:
            raise BadOffer("no_video", "no video m-line")
        for sender in (video_sender, audio_sender):
            if sender is not None:
                park_sender_rtcp(sender)  # SRs come from edge_agent.media.rtcp
        rtc_tweaks.robust_consent(pc)
        try:
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            raise BadOffer("bad_sdp", f"cannot answer: {exc}") from exc
        sdp = pc.localDescription.sdp
        video_ext = b""
        ext_id = negotiate.playout_delay_id(offer_sdp, choice.video_mid)
        if ext_id is not None:
            sdp = negotiate.add_extmap(sdp, choice.video_mid, ext_id, negotiate.PLAYOUT_DELAY_URI)
            video_ext = negotiate.playout_delay_block(ext_id)
        return Peer(pc=pc, video=video_sender, audio=audio_sender, answer_sdp=sdp, video_ext=video_ext)
    except BaseException:
        await pc.close()
        raise
