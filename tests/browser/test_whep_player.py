"""Outside parts end to end: stock ffmpeg as the studio encoder (H.264 High with B-frames at
1080p50 + AAC; HEVC 1080p25 + Opus) over an encrypted SRT link, and a third-party WHEP player from
npm (@eyevinn/webrtc-player, unmodified, default browser offer: VP8 first) in headless Chromium
decoding frames. An offer with H.264 last plays; one without H.264 gets the 4xx."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import ROOT, free_port
from tests.browser.whep_player_setup import ensure_bundle

pytestmark = pytest.mark.browser
SECRET = "studio-link-secret-0123"
STREAMID = "studio-t1"


def _free_udp() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MediaEdge:
    def __init__(self, tmp: Path) -> None:
        key = tmp / "srt.key"
        key.write_text(SECRET + "\n")
        os.chmod(key, 0o600)
        self.srt_port = _free_udp()
        cfg = {"tables": [{"table_id": "t1", "srt_port": self.srt_port, "srt_latency_ms": 120,
                           "srt_passphrase_file": str(key), "srt_streamid": STREAMID, "srt_bind": "127.0.0.1"}],
               # One small rung keeps the shared 2 cores for the 1080p decode and the browser.
               "ladder": [{"name": "360p", "width": 640, "height": 360, "bitrate_kbps": 800}],
               "fps": 25, "start_rung": 0, "announce_addresses": ["127.0.0.1"], "audio": True}
        (tmp / "media.json").write_text(json.dumps(cfg))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (tmp / "edge.log").open("w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.browser.whep_server", "--port", str(self.port),
                                      "--config", str(tmp / "media.json")], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        assert self.proc.stdout is not None
        line = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not line.startswith("READY") and self.proc.poll() is None:
            line = self.proc.stdout.readline()  # structlog's lines come first
        if not line.startswith("READY"):
            self.stop()
            self.log.seek(0)
            raise RuntimeError(f"media edge did not start: {self.log.read()[-3000:]}")

    def state(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/__live/t1", timeout=5).json()

    def wait_live(self, live: bool = True, timeout: float = 40) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state()["live"] is live:
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


ENCODERS = {
    # What an operator's stock encoder sends (docs/OPERATIONS.md, "Testing a studio link").
    "h264-high-bframes-1080p50-aac": [
        "-f", "lavfi", "-i", "testsrc=size=1920x1080:rate=50", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "superfast", "-profile:v", "high", "-bf", "3", "-g", "50",
        "-b:v", "4M", "-c:a", "aac", "-b:a", "128k"],
    "hevc-1080p25-opus": [
        "-f", "lavfi", "-i", "testsrc=size=1920x1080:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-pix_fmt", "yuv420p", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
        "-g", "25", "-b:v", "3M", "-c:a", "libopus", "-b:a", "64k"],
}


def studio(port: int, encoder: str, seconds: int) -> subprocess.Popen[bytes]:
    url = (f"srt://127.0.0.1:{port}?pkt_size=1316&latency=120000&passphrase={SECRET}&pbkeylen=32"
           f"&streamid={STREAMID}")
    return subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", *ENCODERS[encoder][:8],
                             "-t", str(seconds), *ENCODERS[encoder][8:], "-f", "mpegts", url],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def media_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaEdge]:
    ensure_bundle()
    e = MediaEdge(tmp_path_factory.mktemp("whep-edge"))
    yield e
    e.stop()


def _frames(page: Any) -> int:
    return int(page.evaluate("window.__frames()"))


def _play(page: Any, edge: MediaEdge, offer: str = "") -> tuple[int, int]:
    whep = f"{edge.url}/whep/t1"
    page.goto(f"{edge.url}/player/?whep={whep}" + (f"&offer={offer}" if offer else ""))
    page.wait_for_function("window.__pcs.length > 0 && window.__pcs[0].connectionState === 'connected'",
                           timeout=30_000)
    page.wait_for_function("window.__frames().then(n => { window.__n = n; return true; }) && window.__n > 0",
                           polling=250, timeout=30_000)
    first = _frames(page)
    page.wait_for_timeout(1500)
    return first, _frames(page)


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_stock_encoder_to_third_party_player(page: Any, media_edge: MediaEdge, encoder: str) -> None:
    proc = studio(media_edge.srt_port, encoder, 25)
    try:
        assert media_edge.wait_live(), f"{encoder} never made the table live"
        first, later = _play(page, media_edge)
        # Chromium's default offer lists VP8 first; the answer must name H.264 only.
        assert page.evaluate("window.__offerVideo()")[0] == "VP8"
        answer = page.evaluate("window.__answer()")
        assert "H264/90000" in answer and "VP8" not in answer and "VP9" not in answer
        assert later > first > 0, (first, later)
        page.evaluate("window.__player.destroy && window.__player.destroy()")
    finally:
        proc.kill()
        proc.wait()
    assert media_edge.wait_live(False, timeout=15)


def test_h264_last_plays_and_no_h264_is_refused(page: Any, media_edge: MediaEdge) -> None:
    proc = studio(media_edge.srt_port, "h264-high-bframes-1080p50-aac", 20)
    try:
        assert media_edge.wait_live()
        first, later = _play(page, media_edge, offer="h264-last")
        assert later > first > 0, (first, later)
        sent = page.evaluate("window.__offerVideo()")
        h264_at = [i for i, c in enumerate(sent) if c == "H264"]
        assert h264_at and min(h264_at) > max(i for i, c in enumerate(sent) if c != "H264"), sent
        # The same browser's offer with every H.264 payload type removed: a clear 4xx, JSON body.
        status, body = page.evaluate("""async (url) => {
            const pc = new RTCPeerConnection();
            pc.addTransceiver('video', {direction: 'recvonly'});
            const o = await pc.createOffer();
            const h264 = [...o.sdp.matchAll(/a=rtpmap:(\\d+) H264\\/90000/g)].map(m => m[1]);
            const sdp = o.sdp.replace(/^(m=video \\S+ \\S+) ([\\d ]+)(\\r?)$/m,
                (_, head, pts, cr) => head + ' ' + pts.split(' ').filter(p => !h264.includes(p)).join(' ') + cr);
            if (sdp === o.sdp) throw new Error('offer not rewritten');
            const r = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/sdp'}, body: sdp});
            pc.close();
            return [r.status, await r.json()];
        }""", f"{media_edge.url}/whep/t1")
        assert status == 422 and body["error"] == "no_h264", (status, body)
    finally:
        proc.kill()
        proc.wait()
