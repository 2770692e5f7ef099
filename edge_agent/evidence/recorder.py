"""One table's recorder: frames of one rung in (as the ladder encoded them), one clip per round out.

Frames arrive on the event loop from the media tap. The recorder keeps the frames since the last
keyframe, so a round's clip starts at the keyframe before its opening (at most one keyframe
interval early) and always decodes. While a round runs its frames go to a spool on disk; at the
round's end the spool is remuxed into the MP4 (in a thread) and hashed.
"""
from __future__ import annotations

import asyncio
import errno
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from edge_agent.evidence import clip as C
from edge_agent.evidence import metrics as M
from edge_agent.evidence import spool as S
from edge_agent.evidence.library import VideoLibrary
from edge_agent.evidence.rtp import access_unit

log = structlog.get_logger(__name__)
# Room a round needs before it starts to record (a minute of the recorded rung).
ROUND_RESERVE_S = 60


@dataclass
class Clip:
    """A finished clip: the data of its `round.video` entry, and where it is."""

    table_id: str
    chain_id: str
    n: int
    path: Path
    sha256: str
    bytes: int
    start_ts: int
    end_ts: int
    rung: str

    def entry(self) -> dict[str, Any]:
        return {"table_id": self.table_id, "chain_id": self.chain_id, "n": self.n, "sha256": self.sha256,
                "bytes": self.bytes, "start_ts": self.start_ts, "end_ts": self.end_ts, "container": "mp4",
                "rung": self.rung}


@dataclass
class Failure:
    """A round left without a clip (journaled as `video.failed`)."""

    table_id: str
    chain_id: str
    n: int
    reason: str  # budget_reached | disk_full | no_picture

    def entry(self) -> dict[str, Any]:
        return {"table_id": self.table_id, "chain_id": self.chain_id, "n": self.n, "reason": self.reason}


class _Active:
    def __init__(self, key: tuple[str, str, int], spool: S.Spool, meta: dict[str, Any]) -> None:
        self.key, self.spool, self.meta = key, spool, meta
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.frames = 0
        self.failed: str | None = None


class TableRecorder:
    def __init__(self, table_id: str, library: VideoLibrary, rung: str, width: int, height: int, fps: int,
                 bitrate_kbps: int) -> None:
        self.table_id, self.library, self.rung = table_id, library, rung
        self.width, self.height, self.fps = width, height, fps
        self.reserve = bitrate_kbps * 1000 // 8 * ROUND_RESERVE_S
        self._gop: list[tuple[int, bool, bytes, int]] = []
        self._active: _Active | None = None
        M.RECORDING.labels(table_id).set(0)

    # -- the media tap (event loop) --------------------------------------------------------
    def on_frame(self, pts90: int, key: bool, payloads: list[bytes]) -> None:
        self.on_access_unit(pts90, key, access_unit(payloads))

    def on_access_unit(self, pts90: int, key: bool, au: bytes, wall_ms: int | None = None) -> None:
        wall = wall_ms if wall_ms is not None else int(time.time() * 1000)
        if key:
            self._gop.clear()
        self._gop.append((pts90, key, au, wall))
        a = self._active
        if a is not None and a.failed is None:
            self._write(a, pts90, key, au, wall)

    def on_feed_lost(self) -> None:
        # A new feed restarts the stream: frames of the old one cannot lead into it.
        self._gop.clear()

    def _write(self, a: _Active, pts90: int, key: bool, au: bytes, wall: int) -> None:
        if a.frames == 0 and not key:
            return
        try:
            n = a.spool.write(pts90, key, au)
        except OSError as exc:
            a.failed = "disk_full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else f"io_error:{exc.errno}"
            log.error("video.write_failed", table=self.table_id, error=str(exc))
            M.RECORDING.labels(self.table_id).set(0)
            return
        self.library.add(n)
        if self.library.used > self.library.config.budget_bytes:
            a.failed = "budget_reached"
            M.RECORDING.labels(self.table_id).set(0)
            return
        a.frames += 1
        a.first_ts = a.first_ts if a.first_ts is not None else wall
        a.last_ts = wall

    # -- rounds --------------------------------------------------------------------------------
    def begin(self, chain_id: str, n: int) -> Failure | None:
        """Start the clip of round n; a Failure when there is no room (the round runs anyway)."""
        if self._active is not None:
            self.abandon()
        if not self.library.room_for(self.reserve):
            M.FAILURES.labels(self.table_id, "budget_reached").inc()
            M.RECORDING.labels(self.table_id).set(0)
            return Failure(self.table_id, chain_id, n, "budget_reached")
        d = self.library.table_dir(self.table_id)
        base = stem(self.table_id, chain_id, n)
        meta = {"table_id": self.table_id, "chain_id": chain_id, "n": n, "rung": self.rung, "width": self.width,
                "height": self.height, "fps": self.fps}
        try:
            (d / f"{base}.json").write_text(json.dumps(meta))
            spool = S.Spool(d / f"{base}{S.SUFFIX}")
        except OSError as exc:
            log.error("video.begin_failed", table=self.table_id, error=str(exc))
            M.FAILURES.labels(self.table_id, "disk_full").inc()
            return Failure(self.table_id, chain_id, n, "disk_full")
        a = self._active = _Active((self.table_id, chain_id, n), spool, meta)
        for pts, key, au, wall in self._gop:  # from the last keyframe: the clip decodes from its start
            self._write(a, pts, key, au, wall)
        M.RECORDING.labels(self.table_id).set(1)
        return None

    def recording(self, chain_id: str, n: int) -> bool:
        return self._active is not None and self._active.key == (self.table_id, chain_id, n)

    async def end(self, chain_id: str, n: int) -> Clip | Failure | None:
        """Finish round n's clip: the MP4 and its hash, or why there is none (None: not recording)."""
        a = self._active
        if a is None or a.key != (self.table_id, chain_id, n):
            return None
        self._active = None
        M.RECORDING.labels(self.table_id).set(0)
        a.spool.close()
        spool_path = a.spool.path
        if a.failed is not None or a.frames == 0:
            reason = a.failed or "no_picture"
            self._discard(spool_path)
            M.FAILURES.labels(self.table_id, reason).inc()
            return Failure(self.table_id, chain_id, n, reason)
        try:
            result = await asyncio.to_thread(finish_spool, self.library, spool_path, a.meta,
                                             a.first_ts or 0, a.last_ts or 0)
        except OSError as exc:
            log.error("video.finish_failed", table=self.table_id, error=str(exc))
            self._discard(spool_path)
            M.FAILURES.labels(self.table_id, "disk_full").inc()
            return Failure(self.table_id, chain_id, n, "disk_full")
        if result is None:
            M.FAILURES.labels(self.table_id, "no_picture").inc()
            return Failure(self.table_id, chain_id, n, "no_picture")
        M.CLIPS.labels(self.table_id).inc()
        return result

    def abandon(self) -> None:
        a, self._active = self._active, None
        if a is not None:
            a.spool.close()
            self._discard(a.spool.path)
        M.RECORDING.labels(self.table_id).set(0)

    def abandon_to_spool(self) -> None:
        """Stop without finishing: the spool stays for `recover` at the next start."""
        a, self._active = self._active, None
        if a is not None:
            a.spool.close()
        M.RECORDING.labels(self.table_id).set(0)

    def _discard(self, spool_path: Path) -> None:
        self.library.remove(spool_path)
        meta_path(spool_path).unlink(missing_ok=True)


def stem(table_id: str, chain_id: str, n: int) -> str:
    """The clip's file name without `.mp4` (its spool and metadata share it)."""
    return f"{table_id}.{chain_id}.{n}"


def finish_spool(library: VideoLibrary, spool_path: Path, meta: dict[str, Any], start_ts: int | None = None,
                 end_ts: int | None = None) -> Clip | None:
    """Remux a spool into its MP4 (then drop the spool); None when nothing in it decodes.

    Used at a round's end and, after a crash, on the spools left behind (times then come from
    the spool file: its creation is the clip's start, its last write the end)."""
    out = library.path(meta["table_id"], meta["chain_id"], meta["n"])
    if start_ts is None or end_ts is None:
        st = spool_path.stat()
        end_ts = int(st.st_mtime * 1000)
        frames = sum(1 for _ in S.read(spool_path))
        start_ts = end_ts - frames * 1000 // max(1, meta["fps"])
    frames_written = C.remux(S.read(spool_path), out, meta["width"], meta["height"], meta["fps"])
    library.remove(spool_path)
    meta_path(spool_path).unlink(missing_ok=True)
    if frames_written == 0:
        return None
    sha, size = C.sha256_file(out)
    library.add(size)
    return Clip(meta["table_id"], meta["chain_id"], meta["n"], out, sha, size, start_ts, end_ts, meta["rung"])


def leftover_spools(library: VideoLibrary) -> list[tuple[Path, dict[str, Any] | None]]:
    """Spools a crash left behind, with their metadata (None when that is unreadable)."""
    out = []
    for p in sorted(library.root.glob(f"*/*{S.SUFFIX}")):
        try:
            meta = json.loads(meta_path(p).read_text())
        except (OSError, ValueError):
            meta = None
        out.append((p, meta))
    for tmp in library.root.glob("*/*.mp4.tmp"):  # a remux cut short: its spool is still there
        library.remove(tmp)
    return out



def meta_path(spool_path: Path) -> Path:
    return spool_path.with_suffix(".json")  # "t.c.1.spool" -> "t.c.1.json"
