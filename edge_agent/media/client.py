"""A minimal WHEP player on aiortc (used by the tests and benchmarks): POST a recvonly offer,
apply the answer, hand out the remote tracks."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)

from edge_agent.media import rtc_tweaks

rtc_tweaks.install_lazy_estimator()


@dataclass
class WhepPlayer:
    pc: RTCPeerConnection
    location: str
    etag: str | None = None
    tracks: dict[str, MediaStreamTrack] = field(default_factory=dict)

    async def close(self, client: httpx.AsyncClient | None = None) -> None:
        if client is not None:
            try:
                await client.delete(self.location)
            except httpx.HTTPError:
                pass
        await self.pc.close()


class WhepError(Exception):
    def __init__(self, status: int, headers: Any, body: str) -> None:
        super().__init__(f"WHEP {status}: {body}")
        self.status, self.headers, self.body = status, headers, body


async def play(client: httpx.AsyncClient, url: str, token: str | None = None, audio: bool = True) -> WhepPlayer:
    pc = rtc_tweaks.new_peer_connection(RTCConfiguration(iceServers=[]))
    got: dict[str, MediaStreamTrack] = {}
    ready = asyncio.Event()

    @pc.on("track")
    def _on_track(track: MediaStreamTrack) -> None:
        got[track.kind] = track
        ready.set()

    video = pc.addTransceiver("video", direction="recvonly")
    # Offer H.264 first, as a browser player would via setCodecPreferences.
    caps = RTCRtpReceiver.getCapabilities("video").codecs
    video.setCodecPreferences([c for c in caps if c.mimeType == "video/H264"] +
                              [c for c in caps if c.mimeType == "video/rtx"])
    if audio:
        pc.addTransceiver("audio", direction="recvonly")
    rtc_tweaks.robust_consent(pc)
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    r = await client.post(url, content=pc.localDescription.sdp, headers=headers)
    if r.status_code != 201:
        await pc.close()
        raise WhepError(r.status_code, r.headers, r.text)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))
    location = str(httpx.URL(url).join(r.headers["location"]))
    return WhepPlayer(pc=pc, location=location, etag=r.headers.get("etag"), tracks=got)
