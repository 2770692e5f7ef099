"""Prometheus metrics, one registry per control plane (several can live in one test process)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.entries_applied = Counter("controlplane_entries_applied_total", "Journal entries applied once", ["edge"],
                                       registry=r)
        self.entries_duplicate = Counter("controlplane_entries_duplicate_total", "Redelivered entries skipped", ["edge"],
                                         registry=r)
        self.sync_lag = Gauge("controlplane_sync_lag_entries", "Edge head (heartbeat) minus contiguous seq held",
                              ["edge"], registry=r)
        self.audit_flags = Counter("controlplane_audit_flags_total", "Audit flags raised", ["edge", "kind"], registry=r)
        self.payouts = Counter("controlplane_payouts_total", "Payout outcomes", ["rail", "status"], registry=r)
        self.aml_flags = Counter("controlplane_aml_flags_total", "AML flags raised", ["kind"], registry=r)
        self.commands_published = Counter("controlplane_commands_published_total", "Commands published", ["type"],
                                          registry=r)
        self.errors = Counter("controlplane_errors_total", "Errors by place", ["where"], registry=r)
