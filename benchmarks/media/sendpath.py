"""Per-packet CPU of one viewer's send path, Python vs the C fast path, without WebRTC around it.

    python -m benchmarks.media.sendpath [--frames 5000]

A frame of 4 RTP payloads (3 x 1188 + 500 bytes, like a 360p delta frame at 800 kbit/s) is
numbered, SRTP-protected (AES-CM/SHA1-80 via pylibsrtp) and sent over loopback UDP to a socket
that this process drains every 50 frames. Rows: `python` = SenderPath's Python loop (header pack,
concat, pylibsrtp protect, history, sendto per packet); `c` = one `_fastsend.send_frame` per frame
(sendmmsg) with a list as NACK history; `c_ring` = the same building the packets in a
`_fastsend.History` ring (no allocation per packet); `c_no_send` = the list variant without the
socket (build + SRTP + history only); `drain` = the
receiving side's share included in the first two. Loopback delivery (the receiver's softirq work)
is charged to the sender, so the `c` row over-states what a real NIC costs. Last line is JSON.
"""
from __future__ import annotations

import argparse
import json
import random
import socket
import time

from pylibsrtp import Policy, Session

from benchmarks.media.harness import machine
from edge_agent.media import fastsend
from edge_agent.media.fanout import RtpStream

KEY = bytes(range(30))
PAYLOADS = [random.Random(1).randbytes(1188) for _ in range(3)] + [random.Random(2).randbytes(500)]


def _session() -> Session:
    return Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND))


def run(frames: int) -> dict[str, object]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    tx.setblocking(False)
    host, port = rx.getsockname()
    n = frames * len(PAYLOADS)
    drained = [0.0]

    def drain() -> None:
        t0 = time.process_time()
        try:
            while True:
                rx.recv(2048)
        except BlockingIOError:
            pass
        drained[0] += time.process_time() - t0

    def python() -> float:
        s, st, hist = _session(), RtpStream(1, 96, 0, 0), [None] * 256
        t0 = time.process_time()
        for k in range(frames):
            first = st.seq
            for i, p in enumerate(st.packets_for(PAYLOADS, k * 3600)):
                d = s.protect(p)
                hist[(first + i) % 256] = d
                tx.sendto(d, (host, port))
            if k % 50 == 0:
                drain()
        return time.process_time() - t0

    def c(fd: int, ring: bool = False) -> float:
        s, seq = _session(), 0
        hist = fastsend.History(256) if ring else [None] * 256
        ctx = fastsend.srtp_ctx(s)
        t0 = time.process_time()
        for k in range(frames):
            seq, _, _, _ = fastsend.send_frame(PAYLOADS, 96, seq, k * 3600, 1, fastsend.PROTECT_FN, ctx,
                                               fd, host, port, hist)
            if fd >= 0 and k % 50 == 0:
                drain()
        return time.process_time() - t0

    out: dict[str, object] = {"bench": "sendpath", "frames": frames, "packets": n}
    for _ in range(2):  # second round is the one reported (warm)
        drained[0] = 0.0
        out["python_us"] = round(python() / n * 1e6, 2)
        out["drain_in_python_us"] = round(drained[0] / n * 1e6, 2)
        if fastsend.AVAILABLE:
            drained[0] = 0.0
            out["c_us"] = round(c(tx.fileno()) / n * 1e6, 2)
            out["drain_in_c_us"] = round(drained[0] / n * 1e6, 2)
            out["c_no_send_us"] = round(c(-1) / n * 1e6, 2)
            drained[0] = 0.0
            out["c_ring_us"] = round(c(tx.fileno(), ring=True) / n * 1e6, 2)
            out["drain_in_c_ring_us"] = round(drained[0] / n * 1e6, 2)
    out["fastsend"] = fastsend.AVAILABLE
    return {**out, **machine()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=5000)
    print(json.dumps(run(p.parse_args().frames)))


if __name__ == "__main__":
    main()
