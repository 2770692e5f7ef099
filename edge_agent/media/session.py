"""One WHEP viewer: an aiortc peer for ICE/DTLS/RTCP, with the RTP hot path done here.

Once DTLS is up, frames from the fan-out are numbered for this viewer (RtpStream), protected
with aiortc's DTLS-derived SRTP session and sent straight on the nominated ICE pair's socket.
Sender reports come from one timer for all viewers (edge_agent.media.rtcp) with this path's
counters; aiortc's RTCP handler is wrapped so PLI, NACK, REMB and RR reach us, since aiortc
ignores them on a pre-encoded path.
"""
from __future__ import annotations

import asyncio
import random
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    unpack_remb_fci,
)

from edge_agent.media import fastsend, metrics, rtcp
from edge_agent.media.abr import AbrController
from edge_agent.media.compat import aioice as aioice_compat
from edge_agent.media.compat import aiortc as aiortc_compat
from edge_agent.media.fanout import EncodedFrame, RtpStream
from edge_agent.media.peer import Peer

log = structlog.get_logger(__name__)
_wall = time.time
HISTORY = 256  # SRTP packets kept for NACK per viewer (~1-3 s; memory grows with viewers)
_NTP_EPOCH_OFFSET = 2208988800  # 1900-01-01 to 1970-01-01 in seconds


def _ntp(t: float) -> int:
    """aiortc's clock.current_ntp_time() for a given time.time(), without datetime arithmetic."""
    return ((int(t) + _NTP_EPOCH_OFFSET) << 32) | int((t % 1.0) * 4294967296.0)


class SenderPath:
    """Sends already-numbered RTP packets of one aiortc sender on the wire (SRTP + sendto).

    With the C fast path (edge_agent.media.fastsend) one call per frame builds, protects and
    sends the frame's packets (sendmmsg); otherwise the same is done here packet by packet.
    Either way the NACK history holds the SRTP packets exactly as sent.
    """

    def __init__(self, peer: Peer, sender: Any, ext: bytes = b"") -> None:
        self.sender = sender
        self.stream = RtpStream(ssrc=aiortc_compat.sender_ssrc(sender), payload_type=peer.payload_type(sender),
                                seq=random.getrandbits(16), ts_offset=random.getrandbits(32), ext=ext)
        self._srtp, self._ice = peer.transport_handles(sender)
        self._nominated = aioice_compat.nominated_by_component(self._ice)
        self._ctx = fastsend.srtp_ctx(self._srtp) if fastsend.AVAILABLE else 0
        self.fast = bool(self._ctx)
        # NACK store of the SRTP packets as sent: the C path's ring (packets are built in it), or
        # a list indexed by seq % HISTORY on the Python path.
        self._history: Any = fastsend.History(HISTORY) if self.fast else [None] * HISTORY
        # The nominated pair the fast path last resolved: its transport, socket fd, destination.
        self._pair: Any = None
        self._transport: Any = None
        self._fd = -1
        self._dst: tuple[str, int] = ("", 0)
        self.sent_at = 0.0  # time.time() of the last frame: pairs with stream.last_ts in SRs
        self.closed = False
        self._sdes = b""

    def send(self, payloads: list[bytes], pts: int) -> int:
        """Send one frame's payloads; returns the wire bytes. The C path is inline here: this runs
        once per frame per viewer."""
        pair = self._nominated.get(1)
        if pair is None:
            return 0
        self.sent_at = _wall()
        if not self._ctx:
            return self._send_python(pair, payloads, pts)
        if pair is not self._pair:
            self._bind(pair)
        transport = self._transport
        # Only straight to the socket while asyncio holds nothing queued (keeps the order) and
        # the socket is open (a closed transport's fd number may belong to another socket).
        fd = self._fd
        if fd >= 0 and (transport.get_write_buffer_size() or transport.is_closing()):
            fd = -1
        st = self.stream
        ts = (pts + st.ts_offset) & 0xFFFFFFFF
        host, port = self._dst
        st.seq, sent, octets, rest = fastsend.send_frame(
            payloads, st.payload_type, st.seq, ts, st.ssrc, fastsend.PROTECT_FN, self._ctx,
            fd, host, port, self._history, st.ext)
        st.packets += len(payloads)
        st.octets += octets
        st.last_ts = ts
        if rest:  # EAGAIN / error / not IPv4: asyncio queues or reports them as for its own sendto
            sendto, addr = transport.sendto, pair.remote_addr
            for data in rest:
                sendto(data, addr)
                sent += len(data)
        return sent

    def report(self) -> None:
        """Send one RTCP SR (+ SDES CNAME) with this path's counters, as aiortc's loop would."""
        pair = aioice_compat.nominated_pair(self._ice)
        s, st = self.sender, self.stream
        if pair is None or not st.packets:
            return  # no media yet: nothing to map RTP time to (RFC 3550 6.4.1: SRs are for senders)
        ntp = _ntp(self.sent_at)
        payload = bytes(RtcpSrPacket(ssrc=st.ssrc, sender_info=RtcpSenderInfo(
            ntp_timestamp=ntp, rtp_timestamp=st.last_ts, packet_count=st.packets & 0xFFFFFFFF,
            octet_count=st.octets & 0xFFFFFFFF)))
        if not self._sdes:
            cname = aiortc_compat.sender_cname(s)
            if cname is not None:
                self._sdes = bytes(RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=st.ssrc, items=[(1, cname.encode())])]))
        # aiortc computes the RTT from RRs that echo this SR (LSR/DLSR).
        aiortc_compat.note_sender_report(s, (ntp >> 16) & 0xFFFFFFFF, _wall())
        pair.protocol.transport.sendto(self._srtp.protect_rtcp(payload + self._sdes), pair.remote_addr)

    def _send_python(self, pair: Any, payloads: list[bytes], pts: int) -> int:
        sendto, addr, protect = pair.protocol.transport.sendto, pair.remote_addr, self._srtp.protect
        first_seq = self.stream.seq
        hist = self._history
        sent = 0
        for i, pkt in enumerate(self.stream.packets_for(payloads, pts)):
            data = protect(pkt)
            hist[(first_seq + i) % HISTORY] = data
            sendto(data, addr)
            sent += len(data)
        return sent

    def _bind(self, pair: Any) -> None:
        self._pair = pair
        self._transport = transport = pair.protocol.transport
        host, port = pair.remote_addr[0], pair.remote_addr[1]
        fd = fastsend.udp_fd(transport)
        try:
            socket.inet_pton(socket.AF_INET, host)
        except (OSError, TypeError):
            fd = -1  # not IPv4: C still builds and protects, asyncio sends
        if not hasattr(transport, "get_write_buffer_size"):
            fd = -1  # not a plain asyncio datagram transport (e.g. TURN)
        self._fd, self._dst = fd, (host, port)

    def sent_packet(self, seq: int) -> bytes | None:
        """The SRTP packet sent under `seq`, if still kept."""
        h = self._history
        if self.fast:
            return h.get(seq)  # type: ignore[no-any-return]
        data = h[seq % HISTORY]
        return data if data is not None and int.from_bytes(data[2:4], "big") == seq else None

    def resend(self, seq: int) -> None:
        data = self.sent_packet(seq)
        pair = aioice_compat.nominated_pair(self._ice)
        # The stored packet is the SRTP one, so a retransmission is the same bytes again.
        if data is not None and pair is not None:
            pair.protocol.transport.sendto(data, pair.remote_addr)


class ViewerSession:
    def __init__(self, table_id: str, peer: Peer, rung: int, bitrates_bps: list[int],
                 on_keyframe_request: Callable[[], None], fps: int, abr_enabled: bool = True) -> None:
        self.id = uuid.uuid4().hex
        self.etag = f'"{uuid.uuid4().hex[:16]}"'
        self.table_id, self.peer = table_id, peer
        self.rung = self.target = rung
        self.awaiting_key = True
        self.late_frames = 0
        self._late_reported = 0
        self.abr = AbrController(bitrates_bps, rung=rung)
        self._abr_enabled = abr_enabled
        self._on_keyframe_request = on_keyframe_request
        self.video: SenderPath | None = None
        self.audio: SenderPath | None = None
        self.bytes_sent = 0
        self._bytes_mark, self._t_mark = 0, time.monotonic()
        self._frame_interval = 1.0 / fps
        self.closed = asyncio.Event()
        self.rtt_s: float | None = None
        self.loss = 0.0
        self.jitter_s = 0.0
        self._gauges: tuple[Any, ...] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def activate(self) -> None:
        """DTLS is up: take over the RTP path and hook RTCP."""
        fastsend.log_choice()
        reports = rtcp.scheduler()
        self.video = SenderPath(self.peer, self.peer.video, self.peer.video_ext)
        self._hook(self.peer.video, video=True)
        reports.add(self.video)
        if self.peer.audio is not None:
            self.audio = SenderPath(self.peer, self.peer.audio)
            self._hook(self.peer.audio, video=False)
            reports.add(self.audio)
        metrics.VIEWER_RUNG.labels(self.id).set(self.rung)

    def _hook(self, sender: Any, video: bool) -> None:
        def make(original: Any) -> Any:
            async def handle(packet: Any) -> None:
                await original(packet)  # RTT bookkeeping of the SRs it sent
                if video:
                    self.on_rtcp(packet, aiortc_compat.sender_rtt(sender))
            return handle

        aiortc_compat.wrap_rtcp_handler(sender, make)

    # -- fan-out sink ----------------------------------------------------------------------
    def send_frame(self, frame: EncodedFrame) -> None:
        if self.video is not None:
            self.bytes_sent += self.video.send(frame.payloads, frame.pts)

    def send_audio(self, payload: bytes, pts48: int) -> None:
        if self.audio is not None:
            self.bytes_sent += self.audio.send([payload], pts48)

    # -- feedback --------------------------------------------------------------------------
    def on_rtcp(self, packet: Any, rtt_s: float | None) -> None:
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for r in packet.reports:
                if self.video is not None and r.ssrc == self.video.stream.ssrc:
                    self.loss, self.jitter_s, self.rtt_s = r.fraction_lost / 256, r.jitter / 90000, rtt_s
                    target = self.abr.on_receiver_report(self.loss, rtt_s)
                    if self._abr_enabled:
                        self.target = target
                    self._observe()
        elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK and self.video is not None:
            for seq in packet.lost:
                self.video.resend(seq)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            # The shared encoders make the next frame an IDR on every rung; until then this
            # viewer's deltas would only spread the corruption.
            self.awaiting_key = True
            self._on_keyframe_request()
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, _ = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            metrics.VIEWER_REMB.labels(self.id).set(bitrate)
            target = self.abr.on_remb(bitrate)
            if self._abr_enabled:
                self.target = target

    def _observe(self) -> None:
        now = time.monotonic()
        if self._gauges is None:  # label lookups once per viewer, not once per RR
            self._gauges = tuple(m.labels(self.id) for m in (
                metrics.VIEWER_BITRATE, metrics.VIEWER_LOSS, metrics.VIEWER_JITTER, metrics.VIEWER_RUNG))
        bitrate, loss, jitter, rung = self._gauges
        dt = now - self._t_mark
        if dt > 0:
            bitrate.set((self.bytes_sent - self._bytes_mark) * 8 / dt)
        self._bytes_mark, self._t_mark = self.bytes_sent, now
        loss.set(self.loss)
        jitter.set(self.jitter_s)
        rung.set(self.rung)
        if self.late_frames > self._late_reported:
            metrics.VIEWER_LATE.labels(self.id).inc(self.late_frames - self._late_reported)
            self._late_reported = self.late_frames
        if self.rtt_s is not None:
            metrics.VIEWER_RTT.labels(self.id).set(self.rtt_s)

    async def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            for path in (self.video, self.audio):
                if path is not None:
                    path.closed = True
            metrics.forget_viewer(self.id)
            await self.peer.pc.close()
