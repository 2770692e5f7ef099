"""Per-peer savings on aiortc/aioice: shared DTLS certificate, lazy bandwidth estimator, robust
ICE consent, and sender reports from one timer (RTT and SR counters must still be right)."""
from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from aioice import stun
from aiortc import RTCConfiguration, RTCSessionDescription
from aiortc.rate import RemoteBitrateEstimator

from edge_agent.media import peer as peers
from edge_agent.media import rtc_tweaks
from edge_agent.media.client import play
from edge_agent.media.rtcp import SenderReports


async def _offer() -> tuple[Any, str]:
    pc = rtc_tweaks.new_peer_connection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def _fingerprint(sdp: str) -> str:
    return next(line for line in sdp.splitlines() if line.startswith("a=fingerprint:sha-256"))


async def test_answers_share_one_certificate_and_peers_still_connect() -> None:
    peers.set_announce_addresses(["127.0.0.1"])
    made: list[Any] = []
    try:
        answers = []
        for _ in range(2):
            pc, offer = await _offer()
            made.append(pc)
            a = await peers.answer(offer)
            made.append(a.pc)
            answers.append(a)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=a.answer_sdp, type="answer"))
        assert _fingerprint(answers[0].answer_sdp) == _fingerprint(answers[1].answer_sdp)
        # aiortc's own module is left as it was (the swap lasts one constructor call).
        import aiortc.rtcpeerconnection as m
        from aiortc.rtcdtlstransport import RTCCertificate
        assert m.RTCCertificate is RTCCertificate
        for _ in range(100):
            if all(a.pc.connectionState == "connected" for a in answers):
                break
            await asyncio.sleep(0.05)
        assert [a.pc.connectionState for a in answers] == ["connected", "connected"]  # DTLS checked the fingerprint
    finally:
        peers.set_announce_addresses([])
        await asyncio.gather(*(pc.close() for pc in made))


def test_lazy_estimator_builds_on_first_use() -> None:
    rtc_tweaks.install_lazy_estimator()
    import aiortc.rtcrtpreceiver as m

    est = m.RemoteBitrateEstimator()
    assert est._real is None
    assert est.add(abs_send_time=0, arrival_time_ms=1000, payload_size=1000, ssrc=1) is None
    assert isinstance(est._real, RemoteBitrateEstimator)


class _Pair:
    remote_addr = ("127.0.0.1", 9)

    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.protocol = self
        self.retransmissions: list[int | None] = []

    async def request(self, request: Any, addr: Any, integrity_key: bytes, retransmissions: int | None = None) -> Any:
        self.retransmissions.append(retransmissions)
        if self.answers.pop(0) if self.answers else False:
            return None, addr
        raise stun.TransactionTimeout()


class _Conn:
    remote_password = "pw"

    def __init__(self, pair: _Pair) -> None:
        self._nominated = {1: pair}
        self.closed = asyncio.Event()
        self._query_consent_task: Any = "running"

    def build_request(self, pair: Any, nominate: bool) -> Any:
        return object()

    async def close(self) -> None:
        self.closed.set()


@pytest.fixture
def fast_consent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtc_tweaks, "CONSENT_INTERVAL_S", 0.01)
    monkeypatch.setattr(rtc_tweaks, "CONSENT_EXPIRY_S", 0.3)


async def test_consent_survives_misses_shorter_than_expiry(fast_consent: None) -> None:
    # Misses for a while, then an answer: consent holds (aioice closed after 6 misses in a row).
    pair = _Pair([False] * 8 + [True] + [False] * 8 + [True] * 100)
    conn = _Conn(pair)
    task = asyncio.ensure_future(rtc_tweaks._query_consent(conn))
    await asyncio.sleep(0.5)
    assert not conn.closed.is_set()
    assert set(pair.retransmissions) == {rtc_tweaks.CONSENT_RETRANSMISSIONS}
    task.cancel()


async def test_consent_expires_after_silence(fast_consent: None) -> None:
    conn = _Conn(_Pair([]))
    await asyncio.wait_for(rtc_tweaks._query_consent(conn), 5)
    assert conn.closed.is_set() and conn._query_consent_task is None


class _Reporter:
    def __init__(self) -> None:
        self.closed = False
        self.reports = 0

    def report(self) -> None:
        self.reports += 1


async def test_sender_reports_one_timer_randomized_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_agent.media import rtcp

    monkeypatch.setattr(rtcp, "TICK_S", 0.01)
    monkeypatch.setattr(rtcp, "FIRST_SR_S", 0.02)
    sr = SenderReports(interval_s=0.1)
    a, b = _Reporter(), _Reporter()
    sr.add(a)
    sr.add(b)
    await asyncio.sleep(0.55)
    assert 3 <= a.reports <= 12 and 3 <= b.reports <= 12  # first soon, then every 0.05-0.15 s
    b.closed = True
    n = b.reports
    await asyncio.sleep(0.3)
    assert b.reports == n and a.reports > n - 2
    assert len(sr) == 1  # the closed one left the heap
    a.closed = True
    await asyncio.sleep(0.3)
    assert sr._task is not None and sr._task.done()  # no reporters, no timer


async def test_player_gets_sender_reports_and_edge_measures_rtt(edge_factory, studio, http: httpx.AsyncClient) -> None:
    edge = await edge_factory()
    studio("t1", edge.srt_port)
    assert await edge.wait(lambda: edge.service.is_live("t1"))
    player = await play(http, f"{edge.base}/whep/t1", audio=False)
    try:
        assert await edge.wait(lambda: "video" in player.tracks)
        for _ in range(10):
            await asyncio.wait_for(player.tracks["video"].recv(), 10)
        session = next(iter(edge.service.tables["t1"].sessions.values()))
        # The player answers SRs with RRs carrying LSR/DLSR: the edge's RTT comes from those.
        assert await edge.wait(lambda: session.rtt_s is not None, timeout=15), "no RTT: SRs not sent or not echoed"
        assert 0 <= session.rtt_s < 1.0
        receiver = next(t.receiver for t in player.pc.getTransceivers() if t.kind == "video")
        stats = await receiver.getStats()
        remote = [s for s in stats.values() if s.type == "remote-outbound-rtp"]
        assert remote and remote[0].packetsSent > 0 and remote[0].bytesSent > 0  # SR counters
    finally:
        await player.close(http)
