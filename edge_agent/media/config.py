"""Media configuration: tables fed over SRT, the ABR ladder, WHEP capacity and ICE addresses."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    # A misspelt or unsupported key (e.g. a passphrase option under the wrong name) must not be
    # silently ignored: the operator would believe the link is protected.
    model_config = ConfigDict(extra="forbid")


class TableFeed(_Strict):
    table_id: str
    srt_port: int = Field(ge=1, le=65535)
    srt_latency_ms: int = Field(40, ge=1, le=10_000)
    # AES-256 passphrase (10..79 chars, libsrt's bounds) in a file of mode 0600; None = an open
    # link (development only: anyone reaching the port could put a picture in front of players).
    srt_passphrase_file: Path | None = None
    # If set, a caller must send exactly this SRT stream id.
    srt_streamid: str | None = Field(None, min_length=1, max_length=512)
    # Address of the studio-facing interface for this table's listener (default: MediaConfig.srt_bind).
    srt_bind: str | None = None

    @field_validator("srt_passphrase_file")
    @classmethod
    def _private_file(cls, v: Path | None) -> Path | None:
        if v is not None:
            read_passphrase(v)  # fail at load time, not when the first studio calls
        return v

    def passphrase(self) -> str | None:
        return None if self.srt_passphrase_file is None else read_passphrase(self.srt_passphrase_file)


def read_passphrase(path: Path | str) -> str:
    """The passphrase in `path`; refused unless the file is the owner's only (mode 0600 or 0400)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ValueError(f"srt_passphrase_file {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077:
        raise ValueError(f"srt_passphrase_file {path} must be a regular file of mode 0600 "
                         f"(is {stat.filemode(st.st_mode)})")
    text = Path(path).read_text(encoding="utf-8").strip()
    if not 10 <= len(text) <= 79:
        raise ValueError(f"srt_passphrase_file {path}: the passphrase must be 10 to 79 characters")
    if any(c in text for c in "&?=#\n\r") or not text.isprintable():
        raise ValueError(f"srt_passphrase_file {path}: the passphrase must be printable, without & ? = #")
    return text


class IceServer(_Strict):
    """Given to players in WHEP `Link` headers (the edge itself gathers host candidates only)."""

    urls: list[str] = Field(min_length=1)
    username: str | None = None
    credential: str | None = None


class Rung(_Strict):
    name: str
    width: int
    height: int
    bitrate_kbps: int


def default_ladder() -> list[Rung]:
    return [
        Rung(name="720p", width=1280, height=720, bitrate_kbps=2000),
        Rung(name="360p", width=640, height=360, bitrate_kbps=800),
        Rung(name="180p", width=320, height=180, bitrate_kbps=250),
    ]


class MediaConfig(_Strict):
    tables: list[TableFeed] = Field(default_factory=list)
    ladder: list[Rung] = Field(default_factory=default_ladder)
    # The ladder's output frame rate (what players get: 25 or 50); a studio's other rates are
    # converted (transcode.OutputClock).
    fps: int = Field(25, ge=1, le=60)
    keyframe_interval_s: float = 1.0
    # Addresses put in ICE host candidates; empty = every non-loopback interface (aioice default).
    announce_addresses: list[str] = Field(default_factory=list)
    # WHEP sessions this edge accepts before 503/307. Measured on the 2-vCPU box with the studio
    # and ladder running, 800 kbps each (docs/BENCHMARKS.md, media section): 600 viewers with the
    # fan-out in the serving process and 1,000 with `workers: 2` stayed well under 1 % late
    # frames. The default is the conservative in-process figure; set it per box from that benchmark.
    viewer_capacity: int = 300
    # Rung a new viewer starts on (0 = top); ABR moves it from there.
    start_rung: int = 1
    # False pins every viewer to start_rung (benchmarks of one rung).
    abr_enabled: bool = True
    # Fan-out worker processes: one per core on a dedicated edge (ansible sets it); 0 = fan out
    # in the serving process (development, tests, one-core boxes). Workers report their viewers'
    # metrics to the serving process, which Prometheus scrapes.
    workers: int = 0
    # WHEP URLs of sibling edges (e.g. "https://edge-b/whep"); at capacity, POST is redirected (307).
    sibling_urls: list[str] = Field(default_factory=list)
    # No SRT payload for this long = feed down.
    feed_timeout_ms: int = 1000
    retry_after_s: int = 2
    srt_bind: str = "0.0.0.0"
    audio: bool = True
    ice_servers: list[IceServer] = Field(default_factory=list)
