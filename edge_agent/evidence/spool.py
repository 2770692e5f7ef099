"""The clip being recorded, as an append-only spool of encoded frames.

An MP4 is only valid once its index is written at the end; a spool is valid up to its last
complete record, so a crash mid-round leaves something that can still be finished. Record:
8-byte pts (90 kHz), 1-byte keyframe flag, 4-byte length, the Annex-B access unit."""
from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

HEADER = struct.Struct(">qBI")
SUFFIX = ".spool"


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        # Unbuffered: a frame written is in the kernel, so a crash of the process keeps it.
        self._f: BinaryIO | None = open(path, "ab", buffering=0)  # noqa: SIM115 - held for the clip
        self.bytes = 0

    def write(self, pts90: int, key: bool, au: bytes) -> int:
        assert self._f is not None
        rec = HEADER.pack(pts90, 1 if key else 0, len(au)) + au
        self._f.write(rec)  # may raise OSError (ENOSPC): the recorder stops this clip
        self.bytes += len(rec)
        return len(rec)

    def close(self) -> None:
        if self._f is not None:
            try:
                self._f.close()
            finally:
                self._f = None


def read(path: Path) -> Iterator[tuple[int, bool, bytes]]:
    """Complete records in order; a torn last record (crash mid-write) is left out."""
    data = path.read_bytes()
    off = 0
    while off + HEADER.size <= len(data):
        pts, key, n = HEADER.unpack_from(data, off)
        end = off + HEADER.size + n
        if end > len(data):
            return
        yield pts, bool(key), data[off + HEADER.size:end]
        off = end
