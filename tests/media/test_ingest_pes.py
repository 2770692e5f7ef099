"""Ingest ends an unbounded video PES (an IDR picture over 64 KB) when the feed goes quiet after
it, instead of waiting for the next picture's PES: the demuxer hands the IDR on with the rest of
its picture's data, the stream stays intact (continuity counters, decoding) and pictures with a
PES length pass as before."""
from __future__ import annotations

import fractions
import io
import queue
import socket
import threading

import av
import pytest

from edge_agent.media.ingest import DEMUX_OPTIONS, TS_PACKET, PesTerminator, UdpFeed, empty_pes_start
from edge_agent.studio.render import TableRenderer

CHUNK = 1316  # what SRT senders put in a message: 7 TS packets
FRAMES = 32  # IDRs at 0 and 25


def _ts_frames() -> list[bytes]:
    """A studio-like 720p MPEG-TS (flushed per packet, PES lengths where they fit), per picture."""
    buf = io.BytesIO()
    out = av.open(buf, mode="w", format="mpegts", options={"flush_packets": "1", "omit_video_pes_length": "0"})
    v = out.add_stream("libx264", rate=25)
    v.width, v.height, v.pix_fmt, v.bit_rate = 1280, 720, "yuv420p", 4_000_000
    v.options = {"preset": "ultrafast", "tune": "zerolatency", "g": "25", "bf": "0", "x264-params": "repeat-headers=1"}
    v.codec_context.time_base = fractions.Fraction(1, 25)
    r = TableRenderer("t1", 1280, 720)
    frames, mark = [], 0
    for i in range(FRAMES):
        f = r.render(i, 0, None, None)
        f.pts, f.time_base = i, fractions.Fraction(1, 25)
        for p in v.encode(f):
            out.mux(p)
        frames.append(buf.getvalue()[mark:])
        mark = len(buf.getvalue())
    out.close()
    return frames


@pytest.fixture(scope="module")
def ts_frames() -> list[bytes]:
    return _ts_frames()


def _unbounded(data: bytes) -> bool:
    for i in range(0, len(data), TS_PACKET):
        p = data[i:i + TS_PACKET]
        if p[1] & 0x40 and ((p[1] & 0x1F) << 8 | p[2]) == 0x100:
            start = 4 + (1 + p[4] if p[3] & 0x20 else 0)
            return p[start + 4:start + 6] == b"\x00\x00"
    return False


def _play(frames: list[bytes], end_unbounded: bool) -> tuple[dict[int, bool], list[bool], int]:
    """Send picture by picture; the next only once the demuxer handed the last one on (or 1 s
    passed). Returns {picture: handed on before the next was sent}, corrupt flags, terminations."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out: queue.Queue[tuple[int, bool, int] | None] = queue.Queue()
    feed_box: list[UdpFeed] = []

    def demux() -> None:
        first = rx.recv(65536)
        feed = UdpFeed(rx, first, 3.0, end_unbounded=end_unbounded)
        feed_box.append(feed)
        c = av.open(feed, mode="r", format="mpegts", options=DEMUX_OPTIONS)
        try:
            for pkt in c.demux(c.streams.video[0]):
                if pkt.size and pkt.pts is not None:
                    out.put((pkt.pts // 3600, pkt.is_corrupt, len(pkt.decode())))
        except (av.FFmpegError, EOFError):
            pass
        finally:
            c.close()
            out.put(None)

    t = threading.Thread(target=demux, daemon=True)
    t.start()
    on_time: dict[int, bool] = {}
    corrupt: list[bool] = []
    seen: set[int] = set()
    try:
        for k, data in enumerate(frames):
            for i in range(0, len(data), CHUNK):
                tx.sendto(data[i:i + CHUNK], rx.getsockname())
            try:
                while k not in seen:
                    got = out.get(timeout=1.0)
                    assert got is not None
                    seen.add(got[0])
                    corrupt.append(got[1])
            except queue.Empty:
                pass
            on_time[k] = k in seen
    finally:
        tx.close()
        t.join(10)
        rx.close()
    return on_time, corrupt, feed_box[0].terminated if feed_box else 0


def test_idr_is_handed_on_with_its_own_picture_not_the_next(ts_frames: list[bytes]) -> None:
    assert _unbounded(ts_frames[25]) and not _unbounded(ts_frames[24])  # the IDR is the unbounded one
    on_time, corrupt, ended = _play(ts_frames, end_unbounded=True)
    assert all(on_time[k] for k in range(20, FRAMES)), on_time  # incl. the IDR at 25
    assert ended >= 1 and not any(corrupt)


def test_without_it_the_idr_waits_for_the_next_picture(ts_frames: list[bytes]) -> None:
    on_time, _, ended = _play(ts_frames[:28], end_unbounded=False)
    assert ended == 0 and not on_time[25] and on_time[24] and on_time[26]


def _pkt(pid: int, cc: int, pes_len: int | None) -> bytes:
    """One TS packet with payload on `pid`: a video PES start of length `pes_len` (0: unbounded),
    or (None) a continuation."""
    head = bytes([0x47, (0x40 if pes_len is not None else 0) | (pid >> 8), pid & 0xFF, 0x10 | cc])
    body = bytes([0, 0, 1, 0xE0, pes_len >> 8, pes_len & 0xFF]) if pes_len is not None else b""
    return head + body + b"\x00" * (TS_PACKET - 4 - len(body))


def test_terminator_keeps_continuity_counters_and_ignores_bounded_pes() -> None:
    ts = PesTerminator()
    ts.feed(_pkt(0x100, 3, 500))
    assert ts.open_pid is None and ts.terminate() is None  # a PES with a length ends by itself
    ts.feed(_pkt(0x100, 4, 0) + _pkt(0x101, 9, None) + _pkt(0x100, 5, None))
    assert ts.open_pid == 0x100
    end = ts.terminate()
    assert end == empty_pes_start(0x100, 6, 0xE0) and len(end) == TS_PACKET and ts.open_pid is None
    later = ts.feed(_pkt(0x100, 6, 800) + _pkt(0x101, 10, None))
    assert later[3] & 0x0F == 7 and later[TS_PACKET + 3] & 0x0F == 10  # shifted on 0x100 only
    ts.feed(b"\x47" * 100)  # not whole TS packets: no more insertion on this feed
    ts.feed(_pkt(0x100, 7, 0))
    assert not ts.enabled and ts.open_pid is None


def test_a_pes_that_goes_on_after_it_was_ended_switches_insertion_off() -> None:
    ts = PesTerminator()
    ts.feed(_pkt(0x100, 0, 0) + _pkt(0x100, 1, None))
    assert ts.terminate() is not None
    ts.feed(_pkt(0x101, 5, None) + _pkt(0x100, 2, None))  # more of the picture we ended: a paused sender
    assert not ts.enabled
    ts.feed(_pkt(0x100, 3, 0))
    assert ts.open_pid is None and ts.terminate() is None
    # ... while a sender whose next packet on the PID starts a PES keeps it on.
    ok = PesTerminator()
    ok.feed(_pkt(0x100, 0, 0))
    assert ok.terminate() is not None
    ok.feed(_pkt(0x100, 1, 0))
    assert ok.enabled and ok.open_pid == 0x100
