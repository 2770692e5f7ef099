"""`edge-agent export --with-video`: the clips of a bundle's rounds into its `video/` folder,
listed in the manifest's `videos` (CONTRACT section 5). Clips are copied in-country only."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from contract.bundle import JOURNAL_FILE, MANIFEST_FILE, Manifest
from contract.video import copy_clips


def video_dir_of(db_path: Path) -> Path:
    """Where the edge keeps its clips: kv `video.dir` (written at start), else next to the journal."""
    try:
        conn = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM kv WHERE key = 'video.dir'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        row = None
    return Path(row[0]) if row else Path(db_path).parent / "video"


def add_videos(out: Path, video_dir: Path) -> Manifest:
    """Copy the clips of the bundle in `out` and list them in its manifest."""
    entries = [json.loads(line) for line in (out / JOURNAL_FILE).read_bytes().split(b"\n") if line]
    listed = copy_clips(entries, video_dir, out)
    raw = json.loads((out / MANIFEST_FILE).read_text())
    raw["videos"] = listed
    m = Manifest.model_validate(raw)
    (out / MANIFEST_FILE).write_text(json.dumps(m.model_dump(), indent=2, sort_keys=True) + "\n")
    return m
