"""Round clips in an export bundle (CONTRACT section 5, `video/`): each clip present must hash to
the `sha256` of its round's `round.video` entry. A clip may be missing (retention ended); an
entry never is."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from contract.verify import Problem

ROUND_VIDEO = "round.video"
VIDEO_DIR = "video"
NAME = re.compile(r"(?P<table>[^.]+)\.(?P<chain>[^.]+)\.(?P<n>[0-9]+)\.mp4")  # fullmatch: no "$" before a newline


def clip_name(table_id: str, chain_id: str, n: int) -> str:
    return f"{table_id}.{chain_id}.{n}.mp4"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_clips(folder: Path, entries: list[dict[str, Any]], listed: dict[str, str] | None) -> list[Problem]:
    """Problems with the bundle's clips, the round whose clip differs first (in journal order) first."""
    videos = {clip_name(e["data"]["table_id"], e["data"]["chain_id"], e["data"]["n"]): e
              for e in entries if e.get("kind") == ROUND_VIDEO and isinstance(e.get("data"), dict)}
    vdir = folder / VIDEO_DIR
    present = sorted(p.name for p in vdir.iterdir() if p.is_file()) if vdir.is_dir() else []
    listed = listed or {}
    bad: list[tuple[int, Problem]] = []
    for name in sorted(set(present) | set(listed)):
        e = videos.get(name)
        m = NAME.fullmatch(name)
        if e is None or m is None:
            bad.append((1 << 62, Problem(None, f"video/{name} has no round.video entry in the bundle")))
            continue
        d, seq = e["data"], e["seq"]
        where = f"round {d['table_id']}/{d['chain_id']}/{d['n']}"
        if name not in present:
            bad.append((seq, Problem(seq, f"clip of {where} is listed in the manifest but missing")))
            continue
        digest = file_sha256(vdir / name)
        if digest != d.get("sha256"):
            bad.append((seq, Problem(seq, f"clip of {where} (video/{name}) does not match its round.video hash")))
        elif name in listed and listed[name] != digest:
            bad.append((seq, Problem(seq, f"clip of {where} does not match the manifest's videos")))
        elif name not in listed:
            bad.append((seq, Problem(seq, f"clip of {where} is not listed in the manifest's videos")))
    return [p for _, p in sorted(bad, key=lambda x: x[0])]


def copy_clips(entries: list[dict[str, Any]], source: Path, out: Path) -> dict[str, str]:
    """Copy the clips of the entries' rounds that still exist into out/video; {name: sha256}."""
    import shutil

    listed: dict[str, str] = {}
    deleted = {clip_name(e["data"]["table_id"], e["data"]["chain_id"], e["data"]["n"])
               for e in entries if e.get("kind") == "video.deleted"}
    for e in entries:
        if e.get("kind") != ROUND_VIDEO:
            continue
        d = e["data"]
        name = clip_name(d["table_id"], d["chain_id"], d["n"])
        src = source / d["table_id"] / name
        if name in deleted or not src.is_file():
            continue
        (out / VIDEO_DIR).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out / VIDEO_DIR / name)
        listed[name] = file_sha256(out / VIDEO_DIR / name)
    return listed
