"""Prometheus metrics of the media path, per viewer and per rung."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

VIEWERS = Gauge("media_viewers", "Connected WHEP viewers by table and rung", ("table", "rung"))
RUNG_BITRATE = Gauge("media_rung_bitrate_bps", "Encoded bitrate of a ladder rung", ("table", "rung"))
RUNG_FRAMES = Counter("media_rung_frames", "Frames encoded per rung", ("table", "rung"))
RUNG_LATE_FRAMES = Counter("media_rung_late_frames", "Frames sent later than one frame interval", ("table", "rung"))
SRT_REFUSED = Counter("media_srt_callers_refused", "SRT callers refused at the studio link (never made live)",
                      ("table", "reason"))
INGEST_FRAMES = Counter("media_ingest_frames", "Studio pictures decoded at the edge", ("table",))
INGEST_MISSING = Counter("media_ingest_frames_missing",
                         "Studio pictures that never arrived (gaps in the studio's timestamps)", ("table",))
FEED_UP = Gauge("media_feed_up", "1 while the table's SRT feed is live", ("table",))
_LAT_BUCKETS = (0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
INGEST_LATENCY = Histogram("media_ingest_latency_seconds",
                           "Studio capture to decoded at the edge (from the picture's capture timestamp)",
                           ("table",), buckets=_LAT_BUCKETS)
ENCODE_TIME = Histogram("media_ladder_encode_seconds", "Scaling and encoding all rungs of one picture",
                        ("table",), buckets=_LAT_BUCKETS)
RUNG_SWITCHES = Counter("media_rung_switches", "ABR rung switches", ("table", "direction"))
# Per viewer: labelled by WHEP session id; removed when the session ends.
VIEWER_RTT = Gauge("media_viewer_rtt_seconds", "Round-trip time from RTCP RR", ("session",))
VIEWER_LOSS = Gauge("media_viewer_loss_ratio", "Fraction lost from RTCP RR", ("session",))
VIEWER_JITTER = Gauge("media_viewer_jitter_seconds", "Interarrival jitter from RTCP RR", ("session",))
VIEWER_RUNG = Gauge("media_viewer_rung", "Ladder rung index the viewer receives (0 = top)", ("session",))
VIEWER_BITRATE = Gauge("media_viewer_bitrate_bps", "Bytes sent to the viewer, as bits per second", ("session",))
VIEWER_REMB = Gauge("media_viewer_remb_bps", "Receiver estimated maximum bitrate", ("session",))
VIEWER_LATE = Counter("media_viewer_late_frames", "Frames sent late to the viewer", ("session",))

PER_VIEWER = (VIEWER_RTT, VIEWER_LOSS, VIEWER_JITTER, VIEWER_RUNG, VIEWER_BITRATE, VIEWER_REMB, VIEWER_LATE)


def forget_viewer(session: str) -> None:
    for m in PER_VIEWER:
        try:
            m.remove(session)
        except KeyError:
            pass


# --- fan-out workers: their viewers' series, re-exposed by the serving process ----------------
# A worker process has its own registry that nobody scrapes; it sends its per-viewer series every
# few seconds and the serving process sets them here (counters advance by the difference).
_BY_NAME = {m.describe()[0].name: m for m in PER_VIEWER}
WORKER_EXPORT_S = 2.0


def export_viewers() -> list[tuple[str, str, float]]:
    """(metric, session, value) of every per-viewer series in this process."""
    out: list[tuple[str, str, float]] = []
    for m in PER_VIEWER:
        for fam in m.collect():
            for sample in fam.samples:
                if not sample.name.endswith("_created"):
                    out.append((fam.name, sample.labels["session"], sample.value))
    return out


def import_viewers(rows: list[tuple[str, str, float]], counted: dict[tuple[str, str], float]) -> None:
    """Set a worker's per-viewer series here; `counted` keeps what its counters were at."""
    for name, session, value in rows:
        m = _BY_NAME.get(name)
        if m is None:
            continue
        if isinstance(m, Counter):
            before = counted.get((name, session), 0.0)
            if value > before:
                m.labels(session).inc(value - before)
                counted[(name, session)] = value
        else:
            m.labels(session).set(value)
