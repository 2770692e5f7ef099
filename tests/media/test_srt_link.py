"""The studio link: encrypted (AES-256) and caller-checked. Stock ffmpeg callers without the
passphrase, with a wrong one, with a weak key or with a wrong stream id are refused, counted
and never make the table live; the studio simulator with the right secret goes live."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from edge_agent.media.config import MediaConfig, TableFeed

SECRET = "correct-horse-battery-staple-42"


def _secret_file(tmp: Path, text: str = SECRET, mode: int = 0o600) -> Path:
    f = tmp / "srt.key"
    f.write_text(text + "\n")
    os.chmod(f, mode)
    return f


def _refused(reason: str) -> float:
    return REGISTRY.get_sample_value("media_srt_callers_refused_total", {"table": "t1", "reason": reason}) or 0.0


def _ffmpeg(port: int, query: str) -> subprocess.Popen[bytes]:
    """Stock ffmpeg as a studio encoder (tiny testsrc, zerolatency so it sends at once)."""
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "quiet", "-re", "-f", "lavfi", "-i", "testsrc=size=160x90:rate=25",
         "-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25",
         "-f", "mpegts", f"srt://127.0.0.1:{port}?{query}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_config_refuses_unknown_keys_and_open_secret_files(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="srt_passphrase"):  # misspelt: must not be ignored
        TableFeed(table_id="t1", srt_port=9000, srt_passphrase="x" * 12)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="mode 0600"):
        TableFeed(table_id="t1", srt_port=9000, srt_passphrase_file=_secret_file(tmp_path, mode=0o644))
    with pytest.raises(ValidationError, match="10 to 79"):
        TableFeed(table_id="t1", srt_port=9000, srt_passphrase_file=_secret_file(tmp_path, "short"))
    with pytest.raises(ValidationError):
        MediaConfig(tables=[], no_such_option=1)  # type: ignore[call-arg]
    feed = TableFeed(table_id="t1", srt_port=9000, srt_passphrase_file=_secret_file(tmp_path))
    assert feed.passphrase() == SECRET
    assert SECRET not in repr(feed)  # the config names the file, never the secret


async def test_only_the_right_studio_makes_the_table_live(edge_factory, studio, tmp_path: Path, capfd) -> None:
    key = _secret_file(tmp_path)
    edge = await edge_factory(start=False)
    cfg = edge.service.config
    # Rebuild the one table with its secret (the factory's edge picks a free port for it).
    from edge_agent.media.table import TableMedia

    feed = TableFeed(table_id="t1", srt_port=edge.srt_port, srt_latency_ms=40, srt_passphrase_file=key,
                     srt_streamid="studio-t1", srt_bind="127.0.0.1")
    svc = edge.service
    svc.tables["t1"] = TableMedia(feed, cfg, svc.tables["t1"]._on_feed_up, svc.tables["t1"]._on_feed_down)
    await svc.start()
    before = {r: _refused(r) for r in ("no_passphrase", "bad_passphrase", "bad_streamid", "weak_key")}
    port = edge.srt_port
    for query, reason in [("streamid=studio-t1", "no_passphrase"),
                          ("passphrase=wrong-passphrase-123&pbkeylen=32&streamid=studio-t1", "bad_passphrase"),
                          (f"passphrase={SECRET}&pbkeylen=32&streamid=someone-else", "bad_streamid"),
                          (f"passphrase={SECRET}&pbkeylen=32", "bad_streamid"),
                          (f"passphrase={SECRET}&pbkeylen=16&streamid=studio-t1", "weak_key")]:
        p = _ffmpeg(port, query)
        try:
            assert await edge.wait(lambda r=reason: _refused(r) > before[r], timeout=8), (query, reason)
            before[reason] = _refused(reason)
            await edge.wait(lambda p=p: p.poll() is not None, timeout=1.5)
            assert not svc.is_live("t1"), query
        finally:
            p.kill()
            p.wait()
    assert edge.ups == []
    # The studio simulator with the table's secret and stream id goes live.
    studio("t1", port, "--passphrase-file", str(key), "--streamid", "studio-t1", "--no-audio")
    assert await edge.wait(lambda: svc.is_live("t1"), timeout=20), "the right studio never went live"
    assert edge.ups == ["t1"]
    # The studio's secret is in no process's command line (`ps` shows those to every local user).
    leaked = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if SECRET.encode() in cmdline.read_bytes():
                leaked.append(cmdline.parent.name)
        except OSError:
            continue  # the process ended meanwhile
    assert not leaked, f"passphrase on the command line of pid(s) {leaked}"
    out, err = capfd.readouterr()  # the edge's logs (and its transcoder's, and libsrt's) of the whole run
    assert "srt.caller_refused" in out + err and SECRET not in out + err
