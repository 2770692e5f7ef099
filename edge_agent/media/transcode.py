"""Decode once, scale to the ladder, encode every rung once, packetize every rung once.

Runs in its own process per table (the event loop never waits on a codec). The parent gets
messages over a pipe:
  ("up",)                       first picture of a feed is encoded
  ("down", reason)              the feed stopped (silence, or the stream ended)
  ("v", rung, pts90k, key, [rtp payloads], encoded_bytes)
  ("a", pts48k, opus_payload)
  ("refused", reason, peer)      an SRT caller was refused (no/wrong passphrase, stream id, ...)
  ("caller", peer)              an SRT caller was accepted
  ("in", decoded, missing)      studio pictures decoded / missing (lost on the link), about 1/s
  ("lat", capture_to_decoded_ms, encode_ms)   about once a second, when the picture carries a
                                             capture timestamp (the studio's does)
The parent may send ("keyframe",) (PLI from a viewer: IDR on every rung, so rungs stay aligned)
and ("stop",).
"""
from __future__ import annotations

import fractions
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from multiprocessing.connection import Connection
from typing import Any

import av
import structlog
from av.video.reformatter import VideoReformatter

from edge_agent.media.child import spawn_child
from edge_agent.media.compat.aiortc import h264_payloads
from edge_agent.media.config import Rung, read_passphrase
from edge_agent.media.ingest import DEMUX_OPTIONS, PesDecoder, UdpFeed, bind_udp, now_ms, wait_for_data
from edge_agent.media.srt import SrtListener
from edge_agent.media.timestamp import read_capture_ts

log = structlog.get_logger(__name__)
VIDEO_CLOCK, AUDIO_CLOCK = 90000, 48000


def _rung_encoder(rung: Rung, fps: int, keyint: int) -> av.VideoCodecContext:
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = rung.width, rung.height, "yuv420p"
    ctx.time_base = fractions.Fraction(1, VIDEO_CLOCK)
    ctx.framerate = fractions.Fraction(fps, 1)
    ctx.bit_rate = rung.bitrate_kbps * 1000
    kb = rung.bitrate_kbps
    ctx.options = {
        "preset": "ultrafast", "tune": "zerolatency", "profile": "baseline", "threads": "1",
        "g": str(keyint), "keyint_min": str(keyint), "bf": "0",
        # In-band SPS/PPS on every IDR (a viewer may join at any keyframe); no scene-cut IDRs so
        # keyframes stay aligned across rungs; VBV caps bursts to what the rung promises.
        "x264-params": f"repeat-headers=1:scenecut=0:vbv-maxrate={kb}:vbv-bufsize={kb // 2}:nal-hrd=none",
    }
    ctx.open()
    return ctx


def _opus_encoder() -> av.AudioCodecContext:
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate, ctx.layout, ctx.format = AUDIO_CLOCK, "stereo", "s16"
    ctx.time_base = fractions.Fraction(1, AUDIO_CLOCK)
    ctx.bit_rate = 64000
    ctx.options = {"application": "lowdelay", "frame_duration": "20"}
    ctx.open()
    return ctx


class Ladder:
    """One decoded picture in, one packetized frame per rung out.

    Rungs are scaled and encoded in parallel threads (libav releases the GIL while it works): the
    ladder costs the slowest rung's time, not the sum of all rungs, and each rung's frame is handed
    on as soon as it is ready, so a 360p viewer does not wait for the 720p encode. Each rung has
    its own scaler: a frame's own reformatter is one SwsContext, unsafe to share across threads."""

    def __init__(self, rungs: list[Rung], fps: int, keyint: int) -> None:
        self.rungs = rungs
        self.encoders = [_rung_encoder(r, fps, keyint) for r in rungs]
        self.force_key = False
        # One scaler per rung: a frame's own reformatter (frame.reformat) is one shared SwsContext.
        self._scalers = [VideoReformatter() for _ in rungs]
        self._pool = (ThreadPoolExecutor(max_workers=len(rungs), thread_name_prefix="rung")
                      if len(rungs) > 1 else None)

    def _encode_rung(self, i: int, frame: av.VideoFrame) -> list[tuple[int, bool, list[bytes], int]]:
        rung, enc = self.rungs[i], self.encoders[i]
        if (frame.width, frame.height) == (rung.width, rung.height) and frame.format.name == "yuv420p":
            scaled = frame  # stamped by the caller; never written here (other rungs read it)
        else:
            scaled = self._scalers[i].reformat(frame, rung.width, rung.height, "yuv420p")
            scaled.pts, scaled.time_base, scaled.pict_type = frame.pts, frame.time_base, frame.pict_type
        out = []
        for pkt in enc.encode(scaled):
            data = bytes(pkt)
            payloads = h264_payloads(data)
            out.append((i, bool(pkt.is_keyframe), payloads, len(data)))
        return out

    def encode_iter(self, frame: av.VideoFrame, pts90: int) -> Iterator[tuple[int, bool, list[bytes], int]]:
        """Rung frames in the order they finish; every rung is done when the iterator ends."""
        key = self.force_key
        self.force_key = False
        # Same timestamp and picture type on every rung: keyframes stay aligned across the ladder.
        frame.pts, frame.time_base = pts90, fractions.Fraction(1, VIDEO_CLOCK)
        frame.pict_type = av.video.frame.PictureType.I if key else av.video.frame.PictureType.NONE
        if self._pool is None:
            yield from self._encode_rung(0, frame)
            return
        futures = [self._pool.submit(self._encode_rung, i, frame) for i in range(len(self.rungs))]
        for fut in as_completed(futures):
            yield from fut.result()

    def encode(self, frame: av.VideoFrame, pts90: int) -> list[tuple[int, bool, list[bytes], int]]:
        return list(self.encode_iter(frame, pts90))


class IngestCounter:
    """Pictures decoded from the studio, and pictures missing between them (a gap in the
    studio's timestamps larger than its frame interval): what the studio link lost."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else None
        self._last: float | None = None
        self.decoded = self.missing = 0

    def saw(self, t: float) -> None:
        self.decoded += 1
        last, self._last = self._last, t
        if last is None or self.interval is None or t <= last:
            return
        gap = round((t - last) / self.interval) - 1
        if 0 < gap < 250:  # a longer jump is a new timeline (restarted encoder), not loss
            self.missing += gap

    def take(self) -> tuple[int, int]:
        out = (self.decoded, self.missing)
        self.decoded = self.missing = 0
        return out


class OutputClock:
    """The ladder's frame rate, whatever the studio sends: each decoded picture is sent for every
    output slot (1/fps apart) it is the latest picture for. 50 fps in and 25 out drops every other
    picture; 30 -> 25 drops one in six; 24 -> 25 repeats one a second. A jump of more than a
    second (a new feed, a stall) restarts the slots at that picture."""

    def __init__(self, fps: int) -> None:
        self.step = 1.0 / fps
        self._next: float | None = None

    def slots(self, t: float) -> list[float]:
        nxt = self._next
        if nxt is None or abs(t - nxt) > 1.0:
            nxt = t
        out = []
        while nxt <= t + self.step / 2:
            out.append(nxt)
            nxt += self.step
        self._next = nxt
        return out


def run(table_id: str, srt_port: int, latency_ms: int, rungs: list[dict[str, Any]], fps: int,
        keyint: int, feed_timeout_ms: int, audio: bool, srt_bind: str, link: dict[str, Any],
        conn: Connection) -> None:
    """Child-process main. `link`: the studio link's `passphrase_file` and `streamid` (or None)."""
    ladder_rungs = [Rung(**r) for r in rungs]
    sock, udp_port = bind_udp()
    send_lock = threading.Lock()

    def send(msg: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(msg)

    pw_file = link.get("passphrase_file")
    listener = SrtListener(srt_port, latency_ms, udp_port, srt_bind,
                           passphrase=read_passphrase(pw_file) if pw_file else None,
                           streamid=link.get("streamid"),
                           on_reject=lambda reason, peer: send(("refused", reason, peer)),
                           on_accept=lambda peer: send(("caller", peer)))
    stop = threading.Event()
    ladder_ref: list[Ladder | None] = [None]

    def control() -> None:
        while not stop.is_set():
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                stop.set()
                return
            if msg[0] == "stop":
                stop.set()
            elif msg[0] == "keyframe" and ladder_ref[0] is not None:
                ladder_ref[0].force_key = True

    threading.Thread(target=control, daemon=True).start()
    clock_origin = time.monotonic()
    try:
        while not stop.is_set():
            first = wait_for_data(sock, listener, 0.25, stop.is_set)
            if first is None:
                break
            feed = UdpFeed(sock, first, feed_timeout_ms / 1000)
            up = False
            reason = "feed lost"
            try:
                container = av.open(feed, mode="r", format="mpegts", options=DEMUX_OPTIONS)
            except (av.FFmpegError, EOFError) as exc:
                log.warning("ingest.open_failed", table=table_id, error=str(exc))
                continue
            ladder = Ladder(ladder_rungs, fps, keyint)
            ladder_ref[0] = ladder
            opus = _opus_encoder() if audio else None
            # Map stream time to one monotonic media clock so RTP timestamps continue across feeds.
            v_off: float | None = None
            a_next: int | None = None
            frames_seen = 0
            clock = OutputClock(fps)
            ingest = IngestCounter(None)
            try:
                streams = [s for s in container.streams if s.type in ("video", "audio")]
                video = next((st for st in streams if st.type == "video"), None)
                rate = video.guessed_rate if video is not None else None
                ingest = IngestCounter(float(rate) if rate else None)
                reported = time.monotonic()
                split = PesDecoder()
                for packet in container.demux(streams):
                    if stop.is_set():
                        reason = "edge stopping"
                        break
                    try:
                        frames = split.decode(packet)
                    except av.FFmpegError:
                        continue
                    for frame in frames:
                        if isinstance(frame, av.VideoFrame):
                            t = frame.time if frame.time is not None else 0.0
                            ingest.saw(t)
                            if time.monotonic() - reported >= 1.0:
                                reported = time.monotonic()
                                send(("in", *ingest.take()))
                            if v_off is None:
                                v_off = (time.monotonic() - clock_origin) - t
                            for slot in clock.slots(t):
                                pts90 = int((slot + v_off) * VIDEO_CLOCK)
                                frames_seen += 1
                                probe = frames_seen % fps == 0
                                if probe:
                                    captured = read_capture_ts(frame)
                                    decoded_ms, t_enc = now_ms(), time.perf_counter()
                                for rung, key, payloads, size in ladder.encode_iter(frame, pts90):
                                    send(("v", rung, pts90, key, payloads, size))
                                    if not up and key:
                                        up = True
                                        send(("up",))
                                if probe and captured is not None:
                                    send(("lat", decoded_ms - captured, (time.perf_counter() - t_enc) * 1000))
                        elif opus is not None and isinstance(frame, av.AudioFrame) and up:
                            if a_next is None:
                                a_next = int((time.monotonic() - clock_origin) * AUDIO_CLOCK)
                            frame.pts = None
                            for pkt in opus.encode(frame):
                                send(("a", a_next, bytes(pkt)))
                                a_next += pkt.duration or 960
            except (av.FFmpegError, EOFError) as exc:
                reason = f"stream error: {exc}"
            finally:
                container.close()
                if ingest.decoded or ingest.missing:
                    send(("in", *ingest.take()))
                if up:
                    send(("down", reason))
                ladder_ref[0] = None
    finally:
        listener.stop()
        sock.close()


class TranscoderProcess:
    """Parent-side handle: spawns the child and delivers its messages on the event loop."""

    def __init__(self, table_id: str, srt_port: int, latency_ms: int, rungs: list[Rung], fps: int,
                 keyint: int, feed_timeout_ms: int, audio: bool, srt_bind: str,
                 on_message: Callable[[tuple[Any, ...]], None], link: dict[str, Any] | None = None) -> None:
        self.table_id = table_id
        # The passphrase travels as its file's path: the child reads it, nothing else holds it.
        self._args = (table_id, srt_port, latency_ms, [r.model_dump() for r in rungs], fps, keyint,
                      feed_timeout_ms, audio, srt_bind, link or {})
        self._on_message = on_message
        self._proc: Any = None
        self._conn: Connection | None = None
        self._last_key_request = 0.0

    def start(self) -> None:
        self._proc, self._conn = spawn_child(run, self._args, f"transcode-{self.table_id}", self._on_message)

    def request_keyframe(self) -> None:
        # Rate-limited: a PLI storm from many viewers must not turn every frame into an IDR.
        now = time.monotonic()
        if self._conn is not None and now - self._last_key_request > 1.0:
            self._last_key_request = now
            try:
                self._conn.send(("keyframe",))
            except OSError:
                pass

    def stop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(("stop",))
            except OSError:
                pass
        if self._proc is not None:
            self._proc.join(3)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(2)
        if self._conn is not None:
            self._conn.close()
