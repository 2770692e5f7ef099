"""Encoded frames back from the ladder's RTP payloads (single NAL, STAP-A, FU-A), as Annex B.

The ladder packetizes each rung once for WebRTC; recording reassembles those payloads instead of
encoding again, so the clip holds exactly the bytes the players were sent."""
from __future__ import annotations

from aiortc.codecs.h264 import H264PayloadDescriptor


def access_unit(payloads: list[bytes]) -> bytes:
    """One Annex-B access unit from the RTP payloads of one frame."""
    return b"".join(H264PayloadDescriptor.parse(p)[1] for p in payloads)
