"""Codec choice from a WHEP offer: the answer names only what the edge sends.

The edge sends one H.264 stream (constrained baseline, packetization-mode 1, from the ladder) and
Opus. A player's offer may list VP8, VP9, AV1 and several H.264 variants in any order, and a
generic player sets no codec preferences: the answer must carry exactly the offer's payload type
of a usable H.264 (and of Opus), or the player decodes nothing. Every H.264 profile decodes a
constrained-baseline stream, so any profile with packetization-mode 1 is usable; the closest one
is preferred.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

from aiortc import RTCRtpCodecParameters
from aiortc.sdp import H264Profile, MediaDescription, SessionDescription, parse_h264_profile_level_id

# Closest to what the ladder encodes first: a decoder of any of these plays constrained baseline.
_PROFILE_ORDER = [
    H264Profile.PROFILE_CONSTRAINED_BASELINE, H264Profile.PROFILE_BASELINE, H264Profile.PROFILE_MAIN,
    H264Profile.PROFILE_CONSTRAINED_HIGH, H264Profile.PROFILE_HIGH, H264Profile.PROFILE_PREDICTIVE_HIGH_444,
]
# RTCP feedback the edge acts on (session.on_rtcp): NACK resends, PLI/FIR ask for an IDR, REMB.
_FEEDBACK = {("nack", None), ("nack", "pli"), ("ccm", "fir"), ("goog-remb", None)}


class UnusableOffer(ValueError):
    """The offer has nothing the edge can send (machine-readable `code` for the 4xx body)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True)
class Choice:
    video_mid: str | None
    video: RTCRtpCodecParameters
    audio_mid: str | None
    audio: RTCRtpCodecParameters | None  # None: the offer has no Opus (audio stays inactive)


def _h264_rank(codec: RTCRtpCodecParameters) -> int | None:
    if codec.mimeType.lower() != "video/h264" or codec.clockRate != 90000:
        return None
    if str(codec.parameters.get("packetization-mode", "0")) != "1":
        return None
    try:
        profile, _ = parse_h264_profile_level_id(str(codec.parameters.get("profile-level-id", "42e01f")))
    except ValueError:
        return None
    return _PROFILE_ORDER.index(profile)


def _sent_form(codec: RTCRtpCodecParameters) -> RTCRtpCodecParameters:
    out = copy.deepcopy(codec)
    out.rtcpFeedback = [f for f in codec.rtcpFeedback if (f.type, f.parameter) in _FEEDBACK]
    return out


def _listed(media: MediaDescription) -> list[RTCRtpCodecParameters]:
    fmt = {str(f) for f in media.fmt}
    return [c for c in media.rtp.codecs if str(c.payloadType) in fmt]


def choose(offer_sdp: str) -> Choice:
    """The codecs to answer with, under the offer's payload types. Raises UnusableOffer."""
    try:
        desc = SessionDescription.parse(offer_sdp)
    except Exception as exc:  # aiortc's parser raises ValueError/KeyError/IndexError on bad input
        raise UnusableOffer("bad_sdp", f"unparseable SDP offer: {exc}") from exc
    video = next((m for m in desc.media if m.kind == "video" and m.port != 0), None)
    if video is None:
        raise UnusableOffer("no_video", "the offer has no video m-line")
    # Only the formats the m-line lists are offered (a stray a=rtpmap names nothing: RFC 4566 5.14).
    listed = _listed(video)
    ranked = [(r, i, c) for i, c in enumerate(listed) if (r := _h264_rank(c)) is not None]
    if not ranked:
        offered = sorted({c.mimeType.split("/")[-1] for c in listed})
        raise UnusableOffer("no_h264", "the edge sends H.264 (packetization-mode=1); the offer has only "
                            + (", ".join(offered) or "no codecs"))
    h264 = min(ranked, key=lambda x: (x[0], x[1]))[2]
    audio = next((m for m in desc.media if m.kind == "audio" and m.port != 0), None)
    opus = None
    if audio is not None:
        opus = next((c for c in _listed(audio) if c.mimeType.lower() == "audio/opus" and c.clockRate == 48000),
                    None)
    return Choice(video.rtp.muxId, _sent_form(h264), audio.rtp.muxId if audio else None,
                  _sent_form(opus) if opus is not None else None)


# The receiver's jitter buffer: a player may hold every frame for a smoothing delay of its own
# choosing (Chromium: tens of ms when frames arrive unevenly, e.g. a large IDR after a small
# frame). A live table wants pictures shown as soon as they are decoded. The playout-delay
# extension (min = max = 0) tells the player so; sent only when the offer lists it.
PLAYOUT_DELAY_URI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"


def playout_delay_id(offer_sdp: str, mid: str | None) -> int | None:
    """The offer's extmap id for playout-delay in the video m-section (one-byte form: 1-14)."""
    desc = SessionDescription.parse(offer_sdp)
    video = next((m for m in desc.media if m.kind == "video" and m.port != 0 and mid in (None, m.rtp.muxId)), None)
    if video is None:
        return None
    ext = next((e for e in video.rtp.headerExtensions if e.uri == PLAYOUT_DELAY_URI), None)
    return ext.id if ext is not None and 1 <= ext.id <= 14 else None


def playout_delay_block(ext_id: int) -> bytes:
    """RFC 8285 one-byte header extension block: playout delay min = max = 0 (12 bits each)."""
    return bytes([0xBE, 0xDE, 0x00, 0x01, (ext_id << 4) | 2, 0, 0, 0])


def add_extmap(answer_sdp: str, mid: str | None, ext_id: int, uri: str) -> str:
    """The answer with `a=extmap:<id> <uri>` in the video m-section (after its other extmaps)."""
    lines = answer_sdp.split("\r\n")
    sections = [i for i, line in enumerate(lines) if line.startswith("m=")] + [len(lines)]
    for start, end in itertools.pairwise(sections):
        body = lines[start:end]
        if not lines[start].startswith("m=video") or (mid is not None and f"a=mid:{mid}" not in body):
            continue
        anchors = [i for i, line in enumerate(body) if line.startswith(("a=extmap:", "a=mid:"))]
        at = start + (anchors[-1] + 1 if anchors else 1)
        lines.insert(at, f"a=extmap:{ext_id} {uri}")
        break
    return "\r\n".join(lines)
