"""Per-peer costs of aiortc/aioice that a 1,000-viewer edge cannot afford, trimmed without
changing what goes on the wire:

* one DTLS certificate (and SSL context, fingerprints) per process instead of a new EC key and
  X.509 certificate per RTCPeerConnection: peers check the fingerprint from the SDP, which
  stays per answer, so a shared certificate is as safe (browsers do the same per origin);
* aiortc's receive-side bandwidth estimator (1,000 Python objects per peer, ≈ 3 ms) is built
  only when RTP actually arrives, which never happens on a sendonly WHEP peer;
* ICE consent freshness (RFC 7675) that survives a briefly busy event loop: checks every
  4-6 s with STUN retransmissions, consent lost only after 30 s without any answer, where
  aioice sends each check once (0.5 s timeout) and gives up after 6 misses in a row.
"""
from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import structlog
from aioice import stun
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsFingerprint

from edge_agent.media.compat import aioice as aioice_compat
from edge_agent.media.compat import aiortc as aiortc_compat

log = structlog.get_logger(__name__)

CERT_MAX_AGE_S = 24 * 3600.0  # aiortc's certificates are valid 30 days; renew well before
CONSENT_INTERVAL_S = 5.0
CONSENT_EXPIRY_S = 30.0
CONSENT_RETRANSMISSIONS = 3  # sends at 0, 0.5, 1.5, 3.5 s (aioice doubles from 0.5 s)


class SharedCertificate(RTCCertificate):
    """A certificate reused by many peers: fingerprints and SSL contexts computed once."""

    def __init__(self, key: Any, cert: Any) -> None:
        super().__init__(key, cert)
        self.created = time.monotonic()
        self._fingerprints: list[RTCDtlsFingerprint] | None = None
        self._contexts: dict[bytes, Any] = {}

    def getFingerprints(self) -> list[RTCDtlsFingerprint]:
        if self._fingerprints is None:
            self._fingerprints = super().getFingerprints()
        return list(self._fingerprints)

    def _create_ssl_context(self, srtp_profiles: list[Any]) -> Any:
        # An SSL_CTX holds only the certificate, key and options: OpenSSL shares it between
        # connections by design.
        k = b":".join(p.openssl_profile for p in srtp_profiles)
        ctx = self._contexts.get(k)
        if ctx is None:
            ctx = self._contexts[k] = aiortc_compat.create_ssl_context(self, srtp_profiles)
        return ctx


_shared: SharedCertificate | None = None


def shared_certificate() -> SharedCertificate:
    global _shared
    if _shared is None or time.monotonic() - _shared.created > CERT_MAX_AGE_S:
        _shared = SharedCertificate.generateCertificate()
    return _shared


class _SharedCertificateFactory:
    """Stands in for RTCCertificate inside aiortc.rtcpeerconnection while one pc is built."""

    @staticmethod
    def generateCertificate() -> SharedCertificate:
        return shared_certificate()


def new_peer_connection(configuration: RTCConfiguration | None = None) -> RTCPeerConnection:
    """An RTCPeerConnection on the process's shared DTLS certificate."""
    original = aiortc_compat.swap_certificate_factory(_SharedCertificateFactory)
    try:  # synchronous: no other pc can interleave
        return RTCPeerConnection(configuration)
    finally:
        aiortc_compat.swap_certificate_factory(original)


class _LazyBitrateEstimator:
    """RemoteBitrateEstimator built on first use (the first RTP packet received)."""

    __slots__ = ("_real",)

    def __init__(self) -> None:
        self._real: RemoteBitrateEstimator | None = None

    def __getattr__(self, name: str) -> Any:
        if self._real is None:
            self._real = RemoteBitrateEstimator()
        return getattr(self._real, name)


def install_lazy_estimator() -> None:
    """Process-wide; a receiver that does get RTP behaves exactly as before."""
    aiortc_compat.set_receiver_estimator(_LazyBitrateEstimator)


async def _query_consent(conn: Any) -> None:
    """aioice Connection.query_consent with retransmissions and a 30 s expiry (RFC 7675)."""
    loop = asyncio.get_running_loop()
    last_ok = loop.time()
    while True:
        await asyncio.sleep(CONSENT_INTERVAL_S * (0.8 + 0.4 * random.random()))
        for pair in aioice_compat.nominated_pairs(conn):
            try:
                await aioice_compat.stun_request(pair, conn, CONSENT_RETRANSMISSIONS)
                last_ok = loop.time()
            except stun.TransactionError:
                pass
        if loop.time() - last_ok > CONSENT_EXPIRY_S:
            log.info("media.consent_expired", silent_s=round(loop.time() - last_ok, 1))
            aioice_compat.consent_lost(conn)
            await conn.close()
            return


def robust_consent(pc: RTCPeerConnection) -> None:
    """Use `_query_consent` for every ICE connection of `pc` (call before ICE connects)."""
    for t in pc.getTransceivers():
        for transport in (t.sender.transport, t.receiver.transport):
            if transport is None:
                continue
            aioice_compat.replace_consent(aiortc_compat.ice_connection(transport.transport), _query_consent)
