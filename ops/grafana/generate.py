"""Grafana dashboards of the edge and the control plane, generated with grafana-foundation-sdk.

`python -m ops.grafana.generate` writes ops/grafana/dashboards/*.json (checked in; the Ansible
`monitoring` tasks ship them with a provisioning file). tests/ops/test_dashboards.py regenerates
them, compares with the checked-in JSON, and checks every metric a panel queries against the
metrics the running services actually export.
"""
from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

OUT = Path(__file__).resolve().parent / "dashboards"
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")


def _panel(title: str, unit: str, *queries: tuple[str, str], description: str = "") -> timeseries.Panel:
    p = timeseries.Panel().title(title).unit(unit).datasource(DS).height(8).span(12)
    if description:
        p = p.description(description)
    for i, (expr, legend) in enumerate(queries):
        p = p.with_target(prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i)).datasource(DS))
    return p


def _board(uid: str, title: str, tags: list[str], panels: list[timeseries.Panel]) -> dashboard.Dashboard:
    d = (dashboard.Dashboard(title).uid(uid).tags(tags).refresh("30s").time("now-1h", "now").timezone("utc")
         .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus")))
    for p in panels:
        d = d.with_panel(p)
    return d


def edge() -> dashboard.Dashboard:
    by = "sum by (instance)"
    return _board("livecasino-edge", "Live casino: edge", ["livecasino", "edge"], [
        _panel("Bets per second", "reqps",
               (f'{by} (rate(casino_bets_total{{result="accepted"}}[5m]))', "{{instance}} accepted"),
               (f'{by} (rate(casino_bets_total{{result!="accepted"}}[5m]))', "{{instance}} refused")),
        _panel("Bet acknowledgement latency", "s",
               ("histogram_quantile(0.5, sum by (le, instance) (rate(casino_bet_ack_seconds_bucket[5m])))", "{{instance}} p50"),
               ("histogram_quantile(0.99, sum by (le, instance) (rate(casino_bet_ack_seconds_bucket[5m])))", "{{instance}} p99"),
               description="Bet received to durable (fsync'd) acknowledgement."),
        _panel("Rounds per minute", "short",
               ('sum by (instance, table) (increase(casino_rounds_total{result="settled"}[1m]))', "{{instance}} {{table}}")),
        _panel("Voided rounds", "short",
               ('sum by (instance, table) (increase(casino_rounds_total{result="voided"}[5m]))', "{{instance}} {{table}}"),
               description="Rounds voided (bets refunded): feed loss, shutdown, operator."),
        _panel("Viewers per rung", "short", ("sum by (instance, rung) (media_viewers)", "{{instance}} {{rung}}")),
        _panel("Glass-to-glass latency (players)", "s",
               ("histogram_quantile(0.95, sum by (le, instance) (rate(media_glass_to_glass_seconds_bucket[5m])))",
                "{{instance}} p95"),
               description="Measured in players' browsers: the clock in the picture against the edge's clock."),
        _panel("Late frames", "short",
               ("sum by (instance, rung) (rate(media_rung_late_frames_total[5m]))", "{{instance}} {{rung}}")),
        _panel("Sync lag to the cloud", "short", ("max by (instance, edge) (casino_sync_lag_entries)", "{{edge}}"),
               description="Journal entries the cloud has not acknowledged yet."),
        _panel("Journal replication (Litestream)", "short",
               ("max by (instance) (changes(casino_journal_head_seq[5m]))", "{{instance}} journal commits"),
               ("max by (instance) (changes(litestream_txid[5m]))", "{{instance}} Litestream transactions"),
               ("sum by (instance) (increase(litestream_sync_error_count[5m]))", "{{instance}} sync errors"),
               description="Litestream's own metrics: a journal that moves while Litestream's txid does not is a "
                           "replica falling behind (alerts JournalReplicaLagging / JournalNotReplicating)."),
    ])


def control_plane() -> dashboard.Dashboard:
    return _board("livecasino-control-plane", "Live casino: control plane", ["livecasino", "control-plane"], [
        _panel("Journal entries applied per second", "ops",
               ("sum by (edge) (rate(controlplane_entries_applied_total[5m]))", "{{edge}}")),
        _panel("Lag per edge", "short", ("max by (edge) (controlplane_sync_lag_entries)", "{{edge}}"),
               description="Edge head (heartbeat) minus the contiguous seq the cloud holds."),
        _panel("Commands published", "short",
               ("sum by (type) (increase(controlplane_commands_published_total[5m]))", "{{type}}")),
        _panel("Payouts", "short", ("sum by (rail, status) (increase(controlplane_payouts_total[1h]))", "{{rail}} {{status}}")),
        _panel("AML flags", "short", ("sum by (kind) (increase(controlplane_aml_flags_total[1h]))", "{{kind}}")),
    ])


DASHBOARDS = {"edge.json": edge, "control-plane.json": control_plane}


def render() -> dict[str, str]:
    """{file name: JSON text} of every dashboard, exactly as checked in."""
    enc = JSONEncoder(sort_keys=True, indent=2)
    return {name: enc.encode(build().build()) + "\n" for name, build in DASHBOARDS.items()}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        json.loads(text)
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
