"""Prometheus metrics of the edge (names documented in docs/OPERATIONS.md).

Replication of the journal is not measured here: Litestream exports its own metrics on the
`addr:` of its config (`litestream_txid`, `litestream_sync_error_count`), whether it runs as the
edge's child or as its own unit; the alert rules read those."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class Tally(Collector):
    """A counter for the bet path: a plain dict increment (no lock, no label lookup), read at
    scrape time. Safe because only the event-loop thread increments it."""

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.counts: defaultdict[tuple[str, ...], int] = defaultdict(int)
        REGISTRY.register(self)

    def collect(self) -> Iterator[CounterMetricFamily]:
        fam = CounterMetricFamily(self.name, self.documentation, labels=list(self.labelnames))
        for labels, value in list(self.counts.items()):
            fam.add_metric(list(labels), value)
        yield fam


BETS = Tally("casino_bets", "Bets by table and result (accepted or the refusal code)", ("table", "result"))
BET_ACK = Histogram("casino_bet_ack_seconds", "Bet received to durable acknowledgement",
                    buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
ROUNDS = Counter("casino_rounds_total", "Rounds ended, by table and result", ["table", "result"])
JOURNAL_HEAD = Gauge("casino_journal_head_seq", "Last seq committed to the journal (set by the store at every commit)")
JOURNAL_COMMIT = Histogram("casino_journal_commit_seconds", "Duration of one group commit (fsync included)",
                           buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5))
ERRORS = Counter("casino_errors_total", "Refused requests by error code", ["code"])
WS_CONNECTIONS = Gauge("casino_ws_connections", "Open player WebSocket connections")
SYNC_LAG = Gauge("casino_sync_lag_entries", "Journal entries not yet acknowledged by the cloud", ["edge"])
SYNC_LAST_ACK = Gauge("casino_sync_last_ack_timestamp_seconds", "When the cloud last acknowledged an entry")
# The publisher runs in its own process (edge_agent/sync/publisher_process.py); the edge serves
# these from what it reports and from supervising it.
SYNC_PUBLISHER_UP = Gauge("casino_sync_publisher_up", "1 while the sync publisher process runs", ["edge"])
SYNC_PUBLISHER_RESTARTS = Counter("casino_sync_publisher_restarts_total",
                                  "Sync publisher processes that ended unasked and were started again", ["edge"])
