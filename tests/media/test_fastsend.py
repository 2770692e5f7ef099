"""The C fast path of the fan-out (RTP + SRTP + sendmmsg in one call per frame per viewer).

Its SRTP output must be byte-for-byte what pylibsrtp's own protect gives for the same RTP
packets, decrypt with the peer's keys to the right headers and payloads, keep the NACK history,
and an aiortc WHEP player must still decode video with it (and with the Python fallback).
"""
from __future__ import annotations

import asyncio
import os
import random
import socket
import struct
from collections.abc import Iterator

import httpx
import pytest
from aiortc.rtp import RTCP_RTPFB_NACK, RtcpRtpfbPacket
from pylibsrtp import Policy, Session

from edge_agent.media import fastsend
from edge_agent.media.client import play
from edge_agent.media.fanout import RtpStream

needs_c = pytest.mark.skipif(not fastsend.AVAILABLE, reason=f"C fast path not built: {fastsend.REASON}")
KEY = bytes(range(44))  # long enough for every profile (AES-256-GCM: 32-byte key + 12-byte salt)
CM_SHA1_80 = Policy.SRTP_PROFILE_AES128_CM_SHA1_80
PROFILES = [CM_SHA1_80, Policy.SRTP_PROFILE_AES128_CM_SHA1_32, Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
            Policy.SRTP_PROFILE_AEAD_AES_256_GCM]  # what aiortc may negotiate


def _sessions(profile: int = CM_SHA1_80) -> tuple[Session, Session, Session]:
    """(fast-path sender, reference sender, receiver) sharing one key."""
    tx = [Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)) for _ in range(2)]
    rx = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
    return tx[0], tx[1], rx


def _payloads(n: int, seed: int = 1) -> list[bytes]:
    rnd = random.Random(seed)
    return [rnd.randbytes(rnd.choice((1, 17, 600, 1188, 1200))) for _ in range(n)]


def _udp_pair() -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.settimeout(2)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    return tx, rx


@pytest.fixture(params=[True, False], ids=["gso", "no-gso"])
def gso(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Run with UDP GSO (runs of equal-sized packets per message) and with one packet per message."""
    from edge_agent.media import _fastsend

    before = _fastsend.gso_enabled()
    _fastsend.set_gso(request.param)
    yield request.param
    _fastsend.set_gso(before)


@needs_c
@pytest.mark.parametrize("store", ["ring", "list"])
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("n, seq, sizes", [
    (1, 100, None), (5, 65533, None), (150, 7, None),  # single, seq wrap, > one sendmmsg batch
    (140, 9, (1188,) * 139 + (500,)),  # GSO runs longer than its 64-segment cap, short tail
    (6, 1, (1200, 1200, 600, 1200, 17, 17)),  # runs broken by a shorter and by a longer packet
])
def test_fast_path_matches_pylibsrtp_and_decrypts(n: int, seq: int, sizes: tuple[int, ...] | None,
                                                  profile: int, gso: bool, store: str) -> None:
    fast_tx, ref_tx, rx = _sessions(profile)
    payloads = _payloads(n) if sizes is None else [random.Random(i).randbytes(k) for i, k in enumerate(sizes)]
    ssrc, pt, pts, ts_offset = 0x12345678, 102, 900_000, 0xFFFFF000
    ref = RtpStream(ssrc=ssrc, payload_type=pt, seq=seq, ts_offset=ts_offset)
    expected = [ref_tx.protect(p) for p in ref.packets_for(payloads, pts)]
    ts = (pts + ts_offset) & 0xFFFFFFFF

    tx_sock, rx_sock = _udp_pair()
    history = fastsend.History(256) if store == "ring" else [None] * 256
    try:
        new_seq, wire, octets, unsent = fastsend.send_frame(
            payloads, pt, seq, ts, ssrc, fastsend.PROTECT_FN, fastsend.srtp_ctx(fast_tx),
            tx_sock.fileno(), "127.0.0.1", rx_sock.getsockname()[1], history)
        got = [rx_sock.recv(2048) for _ in range(n)]
    finally:
        tx_sock.close()
        rx_sock.close()

    assert unsent is None
    from edge_agent.media import _fastsend

    assert _fastsend.gso_enabled() == gso  # Linux loopback takes UDP_SEGMENT: no silent fallback
    assert new_seq == ref.seq == (seq + n) & 0xFFFF
    assert octets == sum(map(len, payloads))
    assert wire == sum(map(len, expected))
    assert got == expected  # on the wire, in order, byte for byte what pylibsrtp makes
    for i, data in enumerate(got):
        s = (seq + i) & 0xFFFF
        # NACK history holds the packets as sent
        assert (history.get(s) if store == "ring" else history[s % 256]) == data
        clear = rx.unprotect(data)
        b0, b1, hseq, hts, hssrc = struct.unpack_from("!BBHII", clear)
        assert (b0, b1 & 0x7F, hseq, hts, hssrc) == (0x80, pt, s, ts, ssrc)
        assert bool(b1 & 0x80) == (i == n - 1)  # marker on the frame's last packet only
        assert clear[12:] == payloads[i]


def _send_ring(tx: Session, payloads: list[bytes], seq: int, history: object, fd: int = -1,
               port: int = 0) -> tuple[int, int, int, list[bytes] | None]:
    return fastsend.send_frame(payloads, 102, seq, 3600, 7, fastsend.PROTECT_FN, fastsend.srtp_ctx(tx), fd,
                               "127.0.0.1", port, history)


@needs_c
def test_ring_keeps_the_last_packets_per_seq_and_forgets_what_it_cannot_hold() -> None:
    fast_tx, ref_tx, rx = _sessions()
    ring = fastsend.History(8, slot_size=700)
    assert len(ring) == 8 and ring.get(0) is None and ring.get(70000) is None
    # 12 packets into 8 slots (only the last 8 kept); the 1,188-byte ones do not fit a 700-byte slot.
    sizes = [100, 600, 1188, 50, 600, 600, 1188, 17, 600, 30, 1188, 600]
    payloads = [random.Random(i).randbytes(k) for i, k in enumerate(sizes)]
    ref = RtpStream(ssrc=7, payload_type=102, seq=65530, ts_offset=0)
    expected = [ref_tx.protect(p) for p in ref.packets_for(payloads, 3600)]
    tx_sock, rx_sock = _udp_pair()
    try:
        new_seq, _, _, unsent = _send_ring(fast_tx, payloads, 65530, ring, tx_sock.fileno(), rx_sock.getsockname()[1])
        got = [rx_sock.recv(2048) for _ in payloads]
    finally:
        tx_sock.close()
        rx_sock.close()
    assert unsent is None and new_seq == 6 and got == expected  # every packet sent, byte for byte
    assert [rx.unprotect(d)[12:] for d in got] == payloads  # (and the receiver follows the seq wrap)
    for i, k in enumerate(sizes):
        s = (65530 + i) & 0xFFFF
        kept = i >= len(sizes) - 8 and k + 12 + 144 <= 700
        assert ring.get(s) == (expected[i] if kept else None), i
    assert ring.get((65530 + 11 + 8) & 0xFFFF) is None  # same slot, other seq
    # Without a socket the packets come back (copies of the ring's slots) and stay resendable.
    _, wire, _, unsent = _send_ring(fast_tx, [b"a" * 40, b"b" * 41], 6, ring)
    assert wire == 0 and unsent is not None and [rx.unprotect(d)[12:] for d in unsent] == [b"a" * 40, b"b" * 41]
    assert [ring.get(6), ring.get(7)] == unsent
    ring.clear()
    assert ring.get(6) is None
    with pytest.raises(ValueError):
        fastsend.History(0)
    with pytest.raises(ValueError):
        fastsend.History(4, slot_size=100)


@needs_c
def test_ring_forgets_the_packets_of_a_call_that_failed() -> None:
    ring = fastsend.History(16)
    good, _, _ = _sessions()
    _send_ring(good, [b"x" * 10, b"y" * 10], 100, ring)
    assert ring.get(100) is not None
    # A session with a stream for another SSRC only: srtp_protect answers "no context".
    bad = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_SPECIFIC, ssrc_value=1))
    with pytest.raises(fastsend.SrtpError):
        _send_ring(bad, [b"z" * 10, b"w" * 10], 100, ring)
    assert ring.get(100) is None and ring.get(101) is None


@needs_c
def test_header_extension_block_goes_in_every_packet_as_the_python_path_does(gso: bool) -> None:
    fast_tx, ref_tx, rx = _sessions()
    ext = bytes([0xBE, 0xDE, 0, 1, 0x52, 0, 0, 0])  # playout delay 0 under extmap id 5
    payloads = [random.Random(i).randbytes(1188) for i in range(4)] + [b"tail"]
    ref = RtpStream(ssrc=7, payload_type=102, seq=40, ts_offset=0, ext=ext)
    expected = [ref_tx.protect(p) for p in ref.packets_for(payloads, 3600)]
    tx_sock, rx_sock = _udp_pair()
    try:
        _, _, _, unsent = fastsend.send_frame(payloads, 102, 40, 3600, 7, fastsend.PROTECT_FN,
                                              fastsend.srtp_ctx(fast_tx), tx_sock.fileno(), "127.0.0.1",
                                              rx_sock.getsockname()[1], None, ext)
        got = [rx_sock.recv(2048) for _ in payloads]
    finally:
        tx_sock.close()
        rx_sock.close()
    assert unsent is None and got == expected
    for data, payload in zip(got, payloads, strict=True):
        clear = rx.unprotect(data)
        assert clear[0] == 0x90 and clear[12:20] == ext and clear[20:] == payload  # X bit, block, payload
    with pytest.raises(ValueError):
        fastsend.send_frame([b"x"], 96, 1, 2, 3, fastsend.PROTECT_FN, fastsend.srtp_ctx(fast_tx), -1, "", 0, None,
                            b"\xbe\xde\x00")


@needs_c
def test_without_a_socket_everything_comes_back_unsent() -> None:
    fast_tx, _, rx = _sessions()
    payloads = _payloads(3, seed=2)
    seq, wire, octets, unsent = fastsend.send_frame(
        tuple(payloads), 96, 1, 2, 3, fastsend.PROTECT_FN, fastsend.srtp_ctx(fast_tx), -1, "", 0, None)
    assert (seq, wire, octets) == (4, 0, sum(map(len, payloads)))
    assert [rx.unprotect(d)[12:] for d in unsent] == payloads


@needs_c
def test_srtp_failure_raises_and_sends_nothing() -> None:
    # A session with a stream for another SSRC only: srtp_protect answers "no context".
    tx = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_SPECIFIC, ssrc_value=1))
    tx_sock, rx_sock = _udp_pair()
    rx_sock.settimeout(0.2)
    try:
        with pytest.raises(fastsend.SrtpError):
            fastsend.send_frame([b"x"], 96, 1, 2, 3, fastsend.PROTECT_FN, fastsend.srtp_ctx(tx),
                                tx_sock.fileno(), "127.0.0.1", rx_sock.getsockname()[1], None)
        with pytest.raises(TimeoutError):
            rx_sock.recv(2048)
    finally:
        tx_sock.close()
        rx_sock.close()


@needs_c
def test_bad_arguments_are_refused() -> None:
    tx, _, _ = _sessions()
    ctx = fastsend.srtp_ctx(tx)
    with pytest.raises(TypeError):
        fastsend.send_frame(["str"], 96, 1, 2, 3, fastsend.PROTECT_FN, ctx, -1, "", 0, None)
    with pytest.raises(ValueError):
        fastsend.send_frame([b"x"], 96, 1, 2, 3, fastsend.PROTECT_FN, ctx, 5, "::1", 9, None)
    with pytest.raises(TypeError):
        fastsend.send_frame([b"x"], 96, 1, 2, 3, fastsend.PROTECT_FN, ctx, -1, "", 0, [])
    with pytest.raises(TypeError):
        fastsend.send_frame([b"x"], 96, 1, 2, 3, fastsend.PROTECT_FN, ctx, -1, "", 0, {})


@pytest.fixture(params=["fast", "python"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "fast" and not fastsend.AVAILABLE:
        pytest.skip(f"C fast path not built: {fastsend.REASON}")
    if request.param == "python":
        monkeypatch.setattr(fastsend, "AVAILABLE", False)
    return request.param


async def test_player_decodes_and_nacked_packet_is_resent(path: str, edge_factory, studio,
                                                          http: httpx.AsyncClient) -> None:
    edge = await edge_factory()
    svc = edge.service
    studio("t1", edge.srt_port, "--no-audio")
    assert await edge.wait(lambda: svc.is_live("t1")), "feed never came up"
    player = await play(http, f"{edge.base}/whep/t1", audio=False)
    try:
        assert await edge.wait(lambda: "video" in player.tracks)
        session = next(iter(svc.tables["t1"].sessions.values()))
        assert await edge.wait(lambda: session.video is not None)
        assert session.video.fast is (path == "fast")

        # Watch the player's socket (the datagrams still go on to aiortc).
        receiver = next(t.receiver for t in player.pc.getTransceivers() if t.kind == "video")
        proto = receiver.transport.transport._connection._nominated[1].protocol
        original = proto.datagram_received
        seen: dict[int, list[bytes]] = {}

        def datagram_received(data: bytes, addr: object) -> None:
            if 127 < data[0] < 192 and not (191 < data[1] < 224):  # RTP, not RTCP
                seen.setdefault(int.from_bytes(data[2:4], "big"), []).append(data)
            original(data, addr)

        proto.datagram_received = datagram_received
        frames = [await asyncio.wait_for(player.tracks["video"].recv(), 10) for _ in range(15)]
        assert {(f.width, f.height) for f in frames} == {(640, 360)}
        assert seen

        # The player NACKs a packet it got: the edge sends the very same SRTP packet again.
        ssrc = session.video.stream.ssrc
        seq = (session.video.stream.seq - 5) & 0xFFFF
        assert await edge.wait(lambda: seq in seen, 5)
        await receiver._send_rtcp(RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=ssrc, lost=[seq]))
        assert await edge.wait(lambda: len(seen[seq]) >= 2, 5), "NACKed packet not retransmitted"
        assert seen[seq][1] == seen[seq][0]
        # ... and the picture keeps going.
        await asyncio.wait_for(player.tracks["video"].recv(), 10)
    finally:
        await player.close(http)
    assert await edge.wait(lambda: svc.viewer_count() == 0, 5)


def test_fastsend_can_be_switched_off_by_environment() -> None:
    import subprocess
    import sys

    code = "from edge_agent.media import fastsend; print(fastsend.AVAILABLE, fastsend.REASON)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "EDGE_MEDIA_FASTSEND": "0"}).stdout
    assert out.startswith("False") and "EDGE_MEDIA_FASTSEND" in out
