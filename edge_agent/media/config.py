"""Media configuration: tables fed over SRT, the ABR ladder, WHEP capacity and ICE addresses."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TableFeed(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a mistyped key is refused by name
    table_id: str
    srt_port: int
    srt_latency_ms: int = 40


class Rung(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a mistyped key is refused by name
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


class MediaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a mistyped key is refused by name
    tables: list[TableFeed] = Field(default_factory=list)
    ladder: list[Rung] = Field(default_factory=default_ladder)
    fps: int = 25
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
