"""Every aiortc internal the media path uses, in one place, checked when this module is imported.

The edge sends RTP itself (pre-encoded, shared packetization, C fast path) and keeps aiortc for
ICE/DTLS/RTCP, so it reaches past aiortc's public API. Each reach is a function here; `check()`
runs at import and fails loudly (CompatError) if an upgrade renamed or removed any of them, so an
incompatible aiortc stops the edge at start instead of silently sending nothing. Tested against
the pinned version in tests/media/test_compat.py.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiortc
import aiortc.rtcpeerconnection
import aiortc.rtcrtpreceiver
from aiortc import RTCDtlsTransport, RTCIceTransport, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs.h264 import H264Encoder
from aiortc.rtcdtlstransport import RTCCertificate

TESTED_VERSION = "1.16.0"


class CompatError(RuntimeError):
    pass


def _set_in_init(cls: type, *names: str) -> None:
    """Instance attributes are assigned in __init__: their (mangled) names are in its code."""
    have = set(cls.__init__.__code__.co_names)
    missing = [n for n in names if n not in have]
    if missing:
        raise CompatError(f"aiortc {aiortc.__version__}: {cls.__name__} no longer sets {missing} "
                          f"(tested with {TESTED_VERSION}); see edge_agent/media/compat/aiortc.py")


def _has(obj: Any, *names: str) -> None:
    missing = [n for n in names if not hasattr(obj, n)]
    if missing:
        raise CompatError(f"aiortc {aiortc.__version__}: {getattr(obj, '__name__', obj)} lacks {missing} "
                          f"(tested with {TESTED_VERSION}); see edge_agent/media/compat/aiortc.py")


def check() -> None:
    _set_in_init(RTCRtpTransceiver, "_codecs")
    _set_in_init(RTCDtlsTransport, "_tx_srtp")
    _set_in_init(RTCIceTransport, "_connection")
    _set_in_init(RTCRtpSender, "_ssrc", "_RTCRtpSender__cname", "_RTCRtpSender__lsr", "_RTCRtpSender__lsr_time",
                 "_RTCRtpSender__rtt", "_RTCRtpSender__rtcp_started", "_RTCRtpSender__rtcp_exited")
    _has(RTCRtpSender, "_handle_rtcp_packet", "_run_rtcp", "_send_rtcp")
    _has(H264Encoder, "_packetize", "_split_bitstream")
    _has(RTCCertificate, "_create_ssl_context")
    _has(aiortc.rtcpeerconnection, "RTCCertificate")
    _has(aiortc.rtcrtpreceiver, "RemoteBitrateEstimator")


# -- negotiation ---------------------------------------------------------------------------------
def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[Any]:
    return transceiver._codecs


def set_negotiated_codecs(transceiver: RTCRtpTransceiver, codecs: list[Any]) -> None:
    """What createAnswer puts on the m-line and the sender uses (aiortc has no public setter
    after setRemoteDescription; setCodecPreferences only affects the next negotiation)."""
    transceiver._codecs = codecs


# -- transports ----------------------------------------------------------------------------------
def tx_srtp(dtls: RTCDtlsTransport) -> Any:
    """The pylibsrtp Session aiortc keyed from DTLS for sending."""
    return dtls._tx_srtp


def ice_connection(ice: RTCIceTransport) -> Any:
    """The aioice Connection under an RTCIceTransport."""
    return ice._connection


# -- sender (RTCP bookkeeping) ---------------------------------------------------------------------
def sender_ssrc(sender: RTCRtpSender) -> int:
    return sender._ssrc


def sender_cname(sender: RTCRtpSender) -> str | None:
    return sender._RTCRtpSender__cname  # type: ignore[attr-defined]


def sender_rtt(sender: RTCRtpSender) -> float | None:
    return sender._RTCRtpSender__rtt  # type: ignore[attr-defined]


def note_sender_report(sender: RTCRtpSender, lsr: int, at: float) -> None:
    """Record an SR we sent, so aiortc computes the RTT from RRs echoing it (LSR/DLSR)."""
    sender._RTCRtpSender__lsr = lsr  # type: ignore[attr-defined]
    sender._RTCRtpSender__lsr_time = at  # type: ignore[attr-defined]


def wrap_rtcp_handler(sender: RTCRtpSender, make: Callable[[Any], Any]) -> None:
    """Replace the sender's RTCP handler with `make(original)`."""
    sender._handle_rtcp_packet = make(sender._handle_rtcp_packet)  # type: ignore[method-assign]


def replace_rtcp_loop(sender: RTCRtpSender, loop: Callable[[], Any]) -> None:
    sender._run_rtcp = loop  # type: ignore[method-assign]


def rtcp_started(sender: RTCRtpSender) -> Any:
    return sender._RTCRtpSender__rtcp_started  # type: ignore[attr-defined]


def rtcp_exited(sender: RTCRtpSender) -> Any:
    return sender._RTCRtpSender__rtcp_exited  # type: ignore[attr-defined]


async def send_rtcp(sender: RTCRtpSender, packets: list[Any]) -> None:
    await sender._send_rtcp(packets)


# -- H.264 packetization ---------------------------------------------------------------------------
def h264_payloads(annexb: bytes) -> list[bytes]:
    """RTP payloads (single NAL / STAP-A / FU-A, packetization-mode 1) of one Annex-B access unit."""
    return H264Encoder._packetize(H264Encoder._split_bitstream(annexb))


# -- process-wide substitutions (rtc_tweaks) -------------------------------------------------------
def create_ssl_context(cert: RTCCertificate, srtp_profiles: list[Any]) -> Any:
    return RTCCertificate._create_ssl_context(cert, srtp_profiles)


def swap_certificate_factory(factory: Any) -> Any:
    """Set what aiortc.rtcpeerconnection builds certificates with; returns the previous one."""
    module: Any = aiortc.rtcpeerconnection
    previous = module.RTCCertificate
    module.RTCCertificate = factory
    return previous


def set_receiver_estimator(factory: Any) -> None:
    module: Any = aiortc.rtcrtpreceiver
    module.RemoteBitrateEstimator = factory


check()
