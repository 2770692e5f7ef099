"""The viewers benchmark's C receiver (benchmarks/media/_rtpcount.c): counts frames and late
frames from RTP headers at kernel arrival time and hands every non-RTP datagram back."""
from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest

from benchmarks.media import rtpcount

lib = rtpcount.load()
needs_gcc = pytest.mark.skipif(lib is None, reason="no C compiler for the benchmark counter")


def _rtp(seq: int, ts: int, marker: bool) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | 102, seq, ts, 1) + b"x" * 100


@needs_gcc
async def test_counts_frames_late_frames_and_passes_stun_through() -> None:
    loop = asyncio.get_running_loop()
    got: list[tuple[bytes, Any]] = []
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    dst = transport.get_extra_info("sockname")
    counters = rtpcount.CounterSet(lib, 4, 0.080)
    try:
        idx = counters.add(transport, lambda data, addr: got.append((data, addr)))
        assert idx == 0
        counters.measure(True)
        seq = 0
        for frame in range(10):
            if frame == 6:
                await asyncio.sleep(0.25)  # this frame's last packet arrives 250 ms behind
            for last in (False, False, True):
                tx.sendto(_rtp(seq, frame * 3600, last), dst)
                seq += 1
            tx.sendto(struct.pack("!BBHII", 0x80, 200, 6, 1, 0), dst)  # RTCP SR: ignored
            await asyncio.sleep(0.04)
        stun_like = b"\x00\x01\x00\x00" + b"\x21\x12\xa4\x42" + b"t" * 12
        tx.sendto(stun_like, dst)
        await asyncio.sleep(0.1)
        frames, late, packets, nbytes, expected = counters.stats(idx)
        assert (frames, packets, expected) == (10, 30, 10)
        assert nbytes == 30 * 112
        assert late == 4  # frame 6 and the ones after it keep the 250 ms lag
        assert got == [(stun_like, tx.getsockname())]
        assert counters.nonrtp_dropped() == 0
    finally:
        counters.close()
        transport.close()
        tx.close()


@needs_gcc
@pytest.mark.parametrize("gro", [True, False])
async def test_gso_runs_are_cut_into_datagrams(gro: bool) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dst = transport.get_extra_info("sockname")
    counters = rtpcount.CounterSet(lib, 1, 0.080, gro=gro)
    try:
        idx = counters.add(transport, lambda data, addr: None)
        counters.measure(True)
        for frame in range(3):  # 4 packets of 112 bytes as one GSO message, like the edge's C path
            run = b"".join(_rtp(frame * 4 + k, frame * 3600, k == 3) for k in range(4))
            tx.sendmsg([run], [(socket.SOL_UDP, 103, struct.pack("H", 112))], 0, dst)
            await asyncio.sleep(0.04)
        await asyncio.sleep(0.05)
        frames, late, packets, nbytes, expected = counters.stats(idx)
        assert (frames, late, packets, nbytes, expected) == (3, 0, 12, 12 * 112, 3)
    finally:
        counters.close()
        transport.close()
        tx.close()
