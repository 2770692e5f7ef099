"""Round video evidence at the edge: recorders per fed table, the journal entries, retention.

The casino tells it when a round opens and when it ends; it journals `round.video` (hash, size,
span) before the entry that ends the round, or `video.failed` when the round has no clip (disk
full, no picture: the round itself runs on). Clips stay in-country; only entries are synced.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from edge_agent.evidence import kinds as K
from edge_agent.evidence import metrics as M
from edge_agent.evidence.config import VideoConfig
from edge_agent.evidence.library import ClipRecord, VideoLibrary
from edge_agent.evidence.recorder import (
    Clip,
    Failure,
    TableRecorder,
    finish_spool,
    leftover_spools,
    meta_path,
)

log = structlog.get_logger(__name__)

Append = Callable[[str, dict[str, Any]], dict[str, Any]]
Rows = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]


class EvidenceService:
    def __init__(self, config: VideoConfig, media: Any, append: Append, rows: Rows,
                 clock: Callable[[], int] | None = None) -> None:
        """`media` is the MediaConfig (tables fed, ladder, fps); `append` journals one entry;
        `rows` runs a read-only query on the journal database."""
        self.config = config
        self.library = VideoLibrary(config)
        self._append, self._rows = append, rows
        self.clock = clock or (lambda: int(time.time() * 1000))
        ladder = list(media.ladder)
        names = [r.name for r in ladder]
        self.rung_index = names.index(config.rung) if config.rung is not None else len(ladder) - 1
        rung = ladder[self.rung_index]
        self.recorders = {t.table_id: TableRecorder(t.table_id, self.library, rung.name, rung.width, rung.height,
                                                    media.fps, rung.bitrate_kbps) for t in media.tables}
        self.clips: dict[tuple[str, str, int], ClipRecord] = {}
        self.deleted: set[tuple[str, str, int]] = set()
        self._load_index()
        self._sweeper: asyncio.Task[None] | None = None

    def _load_index(self) -> None:
        for kind, data in self._rows("SELECT kind, data FROM journal WHERE kind IN (?, ?) ORDER BY seq",
                                     (K.ROUND_VIDEO, K.VIDEO_DELETED)):
            d = json.loads(data)
            key = (d["table_id"], d["chain_id"], d["n"])
            if kind == K.ROUND_VIDEO:
                self.clips[key] = ClipRecord(*key, d["sha256"], d["bytes"], d["end_ts"])
            else:
                self.deleted.add(key)

    # -- media tap ---------------------------------------------------------------------------
    def on_frame(self, table_id: str, rung: int, pts90: int, key: bool, payloads: list[bytes]) -> None:
        """Every encoded frame of every rung of a table (one line in the media path calls it)."""
        if rung == self.rung_index:
            rec = self.recorders.get(table_id)
            if rec is not None:
                rec.on_frame(pts90, key, payloads)

    # -- rounds --------------------------------------------------------------------------------
    def round_opened(self, table_id: str, chain_id: str, n: int) -> None:
        rec = self.recorders.get(table_id)
        if rec is None:
            return
        failure = rec.begin(chain_id, n)
        if failure is not None:
            self._append(K.VIDEO_FAILED, failure.entry())

    async def round_ending(self, table_id: str, chain_id: str, n: int) -> dict[str, Any] | None:
        """Finish the round's clip and journal it (call before journaling the round's end)."""
        rec = self.recorders.get(table_id)
        if rec is None:
            return None
        result = await rec.end(chain_id, n)
        return self._journal(result)

    def _journal(self, result: Clip | Failure | None) -> dict[str, Any] | None:
        if result is None:
            return None
        if isinstance(result, Failure):
            return self._append(K.VIDEO_FAILED, result.entry())
        e = self._append(K.ROUND_VIDEO, result.entry())
        self.clips[(result.table_id, result.chain_id, result.n)] = ClipRecord(
            result.table_id, result.chain_id, result.n, result.sha256, result.bytes, result.end_ts)
        return e

    def recording(self, table_id: str, chain_id: str, n: int) -> bool:
        rec = self.recorders.get(table_id)
        return rec is not None and rec.recording(chain_id, n)

    def feed_lost(self, table_id: str) -> None:
        rec = self.recorders.get(table_id)
        if rec is not None:
            rec.on_feed_lost()

    # -- start-up: what a crash left ----------------------------------------------------------
    def recover(self) -> list[dict[str, Any]]:
        """Finish (remux) or discard the clips a crash cut short; the journal says which."""
        out = []
        for spool_path, meta in leftover_spools(self.library):
            if meta is None:
                self.library.remove(spool_path)
                log.warning("video.spool_without_metadata", path=str(spool_path))
                continue
            key = {k: meta[k] for k in ("table_id", "chain_id", "n")}
            if (meta["table_id"], meta["chain_id"], meta["n"]) in self.clips:
                self.library.remove(spool_path)  # journaled already; the spool outlived its rename
                meta_path(spool_path).unlink(missing_ok=True)
                continue
            try:
                clip = finish_spool(self.library, spool_path, meta)
            except Exception as exc:  # noqa: BLE001 - a spool libav cannot read is discarded
                log.warning("video.recover_failed", path=str(spool_path), error=str(exc))
                self.library.remove(spool_path)
                meta_path(spool_path).unlink(missing_ok=True)
                clip = None
            if clip is None:
                out.append(self._append(K.VIDEO_RECOVERED, {**key, "action": "discarded",
                                                            "reason": "no decodable picture"}))
                continue
            out.append(self._journal(clip))
            out.append(self._append(K.VIDEO_RECOVERED, {**key, "action": "finished",
                                                        "reason": "edge restarted mid-clip"}))
        return [e for e in out if e is not None]

    # -- retention -----------------------------------------------------------------------------
    def sweep(self, now_ms: int | None = None) -> list[dict[str, Any]]:
        """Delete clips past the jurisdiction's retention; journal each deletion (hash kept)."""
        now = self.clock() if now_ms is None else now_ms
        live = [r for k, r in self.clips.items() if k not in self.deleted]
        out = []
        for r in self.library.expired(live, now):
            self.library.remove(self.library.path(r.table_id, r.chain_id, r.n))
            key = (r.table_id, r.chain_id, r.n)
            self.deleted.add(key)
            M.DELETED.inc()
            out.append(self._append(K.VIDEO_DELETED, {"table_id": r.table_id, "chain_id": r.chain_id, "n": r.n,
                                                      "sha256": r.sha256, "reason": "retention"}))
        return out

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_loop())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for rec in self.recorders.values():
            rec.abandon_to_spool()

    async def _sweep_loop(self) -> None:
        while True:
            try:
                self.sweep()
            except Exception:
                log.exception("video.sweep_failed")
            await asyncio.sleep(self.config.sweep_interval_s)

    # -- access --------------------------------------------------------------------------------
    def clip_file(self, table_id: str, chain_id: str, n: int) -> tuple[Path, ClipRecord] | None:
        """The clip of a round and its journaled record, when both exist."""
        key = (table_id, chain_id, n)
        rec = self.clips.get(key)
        if rec is None or key in self.deleted:
            return None
        p = self.library.path(*key)
        return (p, rec) if p.is_file() else None
