"""Capacity planner: the seed article's arithmetic, plus measured figures -> edges per region.

Pure functions (no I/O) and a typer ``app`` (mounted as ``edge-agent capacity``).

Seed arithmetic ("Simple calculations you should run"):

* egress = bitrate per stream (kbps) x concurrent streams / 8  -> kB/s; x redundancy (2x).
  800 kbps x 1,200 streams = 960,000 kbps = 120,000 kB/s ~ 120 MB/s; 2x -> 240 MB/s.
* bet store / queue throughput = bets per second x payload: 2,000 BPS x 1 KB = 2 MB/s.

Units: the seed uses decimal units (1 MB = 1,000 kB = 1,000,000 bytes; 1 KB payload = 1,000
bytes), so this module does too.

With measured figures (``viewers per core`` from the media fan-out benchmark, ``bets/s per edge``
from the bet benchmark, cores per edge, the edge's NIC egress) it says how many edge appliances a
region needs: the largest of the media-bound, bet-bound and network-bound counts, after a headroom
factor for spikes (the seed: plan for 2-3x bursts).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import typer

KILO = 1000


def egress_kbytes_per_s(bitrate_kbps: float, streams: int, redundancy: float = 1.0) -> float:
    """Peak egress in kB/s: bitrate (kbps) x concurrent streams / 8, x redundancy."""
    _check_non_negative(bitrate_kbps=bitrate_kbps, streams=streams)
    if redundancy < 1:
        raise ValueError("redundancy must be >= 1")
    return bitrate_kbps * streams / 8 * redundancy


def egress_mbytes_per_s(bitrate_kbps: float, streams: int, redundancy: float = 1.0) -> float:
    """Peak egress in MB/s (decimal)."""
    return egress_kbytes_per_s(bitrate_kbps, streams, redundancy) / KILO


def egress_gbits_per_s(bitrate_kbps: float, streams: int, redundancy: float = 1.0) -> float:
    """Peak egress in Gbit/s (what a NIC or a transit contract is sold in)."""
    return bitrate_kbps * streams * redundancy / 1_000_000


def bet_throughput_bytes_per_s(bets_per_s: float, payload_bytes: float = 1000) -> float:
    """Sustained bet store / queue throughput in bytes per second: BPS x payload."""
    _check_non_negative(bets_per_s=bets_per_s, payload_bytes=payload_bytes)
    return bets_per_s * payload_bytes


def edges_needed(demand: float, capacity_per_edge: float, headroom: float = 1.0) -> int:
    """Edges needed to serve ``demand`` when one edge serves ``capacity_per_edge``, with headroom."""
    _check_non_negative(demand=demand)
    if capacity_per_edge <= 0:
        raise ValueError("capacity per edge must be > 0")
    if headroom < 1:
        raise ValueError("headroom must be >= 1")
    if demand == 0:
        return 0
    # a relative tolerance so float noise (1200 * 1.1 / 1.1 = 1200.0000000000002) adds no edge
    ratio = demand * headroom / capacity_per_edge
    return max(1, math.ceil(ratio * (1 - 1e-12)))


@dataclass(frozen=True)
class Plan:
    bitrate_kbps: float
    streams: int
    redundancy: float
    egress_mb_s: float
    egress_mb_s_redundant: float
    egress_gbit_s_redundant: float
    bets_per_s: float
    payload_bytes: float
    bet_mb_s: float
    headroom: float
    viewers_per_core: float | None = None
    cores_per_edge: int | None = None
    bets_per_s_per_edge: float | None = None
    nic_gbit_s: float | None = None
    edges_for_media: int | None = None
    edges_for_bets: int | None = None
    edges_for_network: int | None = None
    edges: int | None = None
    bound_by: str | None = None


def plan(bitrate_kbps: float, streams: int, bets_per_s: float, *, payload_bytes: float = 1000,
         redundancy: float = 2.0, headroom: float = 1.0, viewers_per_core: float | None = None,
         cores_per_edge: int | None = None, bets_per_s_per_edge: float | None = None,
         nic_gbit_s: float | None = None) -> Plan:
    """The whole picture for a region: egress, bet throughput and (given measurements) edge count."""
    e1 = egress_mbytes_per_s(bitrate_kbps, streams)
    e2 = egress_mbytes_per_s(bitrate_kbps, streams, redundancy)
    counts: dict[str, int] = {}
    if viewers_per_core is not None:
        per_edge = viewers_per_core * (cores_per_edge or 1)
        counts["media"] = edges_needed(streams, per_edge, headroom)
    if bets_per_s_per_edge is not None:
        counts["bets"] = edges_needed(bets_per_s, bets_per_s_per_edge, headroom)
    if nic_gbit_s is not None:
        # redundancy is spare capacity elsewhere, not traffic on this NIC: size on the real egress
        counts["network"] = edges_needed(egress_gbits_per_s(bitrate_kbps, streams), nic_gbit_s, headroom)
    edges = max(counts.values()) if counts else None
    bound = max(counts, key=lambda k: counts[k]) if counts else None
    return Plan(bitrate_kbps=bitrate_kbps, streams=streams, redundancy=redundancy, egress_mb_s=e1,
                egress_mb_s_redundant=e2,
                egress_gbit_s_redundant=egress_gbits_per_s(bitrate_kbps, streams, redundancy),
                bets_per_s=bets_per_s, payload_bytes=payload_bytes,
                bet_mb_s=bet_throughput_bytes_per_s(bets_per_s, payload_bytes) / 1_000_000,
                headroom=headroom, viewers_per_core=viewers_per_core, cores_per_edge=cores_per_edge,
                bets_per_s_per_edge=bets_per_s_per_edge, nic_gbit_s=nic_gbit_s,
                edges_for_media=counts.get("media"), edges_for_bets=counts.get("bets"),
                edges_for_network=counts.get("network"), edges=edges, bound_by=bound)


def summary(p: Plan) -> str:
    lines = [
        f"egress: {p.bitrate_kbps:g} kbps x {p.streams:,} streams / 8 = {p.egress_mb_s:,.1f} MB/s peak",
        (f"        x {p.redundancy:g} redundancy = {p.egress_mb_s_redundant:,.1f} MB/s "
         f"({p.egress_gbit_s_redundant:,.2f} Gbit/s) to provision"),
        (f"bets:   {p.bets_per_s:,g} bets/s x {p.payload_bytes:,g} B = {p.bet_mb_s:,.2f} MB/s sustained "
         "to the journal and the sync queue (buffer bursts of 2-3x)"),
    ]
    if p.edges is not None:
        parts = []
        if p.edges_for_media is not None:
            parts.append(f"media {p.edges_for_media} ({p.viewers_per_core:g} viewers/core x "
                         f"{p.cores_per_edge or 1} cores)")
        if p.edges_for_bets is not None:
            parts.append(f"bets {p.edges_for_bets} ({p.bets_per_s_per_edge:g} bets/s per edge)")
        if p.edges_for_network is not None:
            parts.append(f"network {p.edges_for_network} ({p.nic_gbit_s:g} Gbit/s NIC)")
        lines.append(f"edges:  {p.edges} needed (bound by {p.bound_by}; headroom x{p.headroom:g}): "
                     + ", ".join(parts))
    return "\n".join(lines)


# --- the cloud side: control-plane replicas and NATS for a region of N edges -----------------

# Measured (docs/BENCHMARKS.md, `benchmarks.sync.drain` on PostgreSQL, 2 vCPU box): one replica's
# journal applier is one thread (a core); nats-server's CPU per entry on the stream leader; the
# wire size of one SyncedEntry on `casino.journal.<edge>` with its headers.
CP_ENTRIES_PER_S_PER_CORE = 17_000
NATS_US_PER_ENTRY = 19.0
ENTRY_WIRE_BYTES = 650


@dataclass(frozen=True)
class CloudPlan:
    edges: int
    entries_per_s_per_edge: float
    entries_per_s: float
    headroom: float
    cp_entries_per_s_per_replica: float
    replicas_for_load: int
    replicas: int  # N+1: one replica may die (or be drained) without the rest falling behind
    stream_replicas: int
    nats_ingress_mb_s: float  # what the edges send the cluster
    nats_replication_mb_s: float  # leader -> followers (R-1 copies)
    nats_leader_cores: float  # one stream has one leader: this must fit in a node
    edge_fits_one_replica: bool  # an edge is applied by one replica at a time (its lease)


def cloud_plan(edges: int, entries_per_s_per_edge: float, *, headroom: float = 1.0,
               cp_entries_per_s_per_core: float = CP_ENTRIES_PER_S_PER_CORE, cores_per_replica: int = 1,
               entry_bytes: float = ENTRY_WIRE_BYTES, nats_us_per_entry: float = NATS_US_PER_ENTRY,
               stream_replicas: int = 3, min_replicas: int = 2) -> CloudPlan:
    """Control-plane replicas and NATS load for `edges` edges sending `entries_per_s_per_edge`.

    Application is partitioned by edge (one lease per edge, docs/SYNC.md), so replicas add up
    as long as no single edge needs more than one replica's rate. A replica's applier is one
    thread: extra cores per replica serve the API and the processor, not more entries."""
    _check_non_negative(edges=edges, entries_per_s_per_edge=entries_per_s_per_edge)
    if cp_entries_per_s_per_core <= 0 or cores_per_replica < 1 or stream_replicas < 1 or min_replicas < 1:
        raise ValueError("rates, cores and replica counts must be positive")
    total = edges * entries_per_s_per_edge
    per_replica = cp_entries_per_s_per_core  # one applier thread per replica
    for_load = edges_needed(total, per_replica, headroom)
    ingress = total * headroom * entry_bytes / 1_000_000
    return CloudPlan(edges=edges, entries_per_s_per_edge=entries_per_s_per_edge, entries_per_s=total,
                     headroom=headroom, cp_entries_per_s_per_replica=per_replica, replicas_for_load=for_load,
                     replicas=max(min_replicas, for_load + 1), stream_replicas=stream_replicas,
                     nats_ingress_mb_s=ingress, nats_replication_mb_s=ingress * (stream_replicas - 1),
                     nats_leader_cores=total * headroom * nats_us_per_entry / 1_000_000,
                     edge_fits_one_replica=entries_per_s_per_edge * headroom <= per_replica)


def cloud_summary(p: CloudPlan) -> str:
    lines = [
        (f"journal: {p.edges:,} edges x {p.entries_per_s_per_edge:,g} entries/s = {p.entries_per_s:,g} entries/s "
         f"(headroom x{p.headroom:g})"),
        (f"control plane: {p.replicas} replicas ({p.replicas_for_load} for the load at "
         f"{p.cp_entries_per_s_per_replica:,g} entries/s each, + 1 to lose one)"),
        (f"nats: {p.nats_ingress_mb_s:,.1f} MB/s in from the edges, {p.nats_replication_mb_s:,.1f} MB/s "
         f"leader->followers at R{p.stream_replicas}; stream leader {p.nats_leader_cores:,.2f} cores"),
    ]
    if not p.edge_fits_one_replica:
        lines.append("warning: one edge sends more than one replica applies (an edge has one applier)")
    if p.nats_leader_cores > 1:
        lines.append("warning: one journal stream's leader needs more than a core: split the region's edges "
                     "over several streams (subjects casino.journal.<edge> partition cleanly)")
    return "\n".join(lines)


def _check_non_negative(**values: float) -> None:
    for name, v in values.items():
        if v < 0 or (isinstance(v, float) and math.isnan(v)):
            raise ValueError(f"{name} must be >= 0")


app = typer.Typer(no_args_is_help=False, add_completion=False, pretty_exceptions_enable=False,
                  help="Capacity planning: egress, bet throughput, edges per region")


@app.callback(invoke_without_command=True)
def capacity(
    ctx: typer.Context,
    bitrate_kbps: float = typer.Option(800, "--bitrate-kbps", min=0, help="average bitrate per viewer stream"),
    streams: int = typer.Option(1200, "--streams", min=0, help="concurrent viewer streams at peak"),
    redundancy: float = typer.Option(2.0, "--redundancy", min=1, help="egress redundancy factor"),
    bets_per_s: float = typer.Option(2000, "--bets-per-s", min=0, help="peak bets per second (BPS)"),
    payload_bytes: float = typer.Option(1000, "--payload-bytes", min=0, help="bytes per bet"),
    viewers_per_core: float | None = typer.Option(None, "--viewers-per-core", min=0.000001,
                                                     help="measured: media fan-out viewers per core"),
    cores_per_edge: int = typer.Option(1, "--cores-per-edge", min=1, help="cores per edge for fan-out"),
    bets_per_s_per_edge: float | None = typer.Option(None, "--bets-per-s-per-edge", min=0.000001,
                                                        help="measured: sustained bets/s of one edge"),
    nic_gbit_s: float | None = typer.Option(None, "--nic-gbit-s", min=0.000001,
                                               help="usable egress of one edge"),
    headroom: float = typer.Option(1.0, "--headroom", min=1, help="spike headroom factor (seed: 2-3)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Seed arithmetic (defaults = the seed's worked example) and, with measurements, edges needed."""
    if ctx.invoked_subcommand is not None:
        return
    p = plan(bitrate_kbps, streams, bets_per_s, payload_bytes=payload_bytes, redundancy=redundancy,
             headroom=headroom, viewers_per_core=viewers_per_core,
             cores_per_edge=cores_per_edge if viewers_per_core is not None else None,
             bets_per_s_per_edge=bets_per_s_per_edge, nic_gbit_s=nic_gbit_s)
    if as_json:
        typer.echo(json.dumps(asdict(p), sort_keys=True))
    else:
        typer.echo(summary(p))


@app.command("cloud")
def cloud(
    edges: int = typer.Option(30, "--edges", min=0, help="edges in the region"),
    entries_per_s_per_edge: float = typer.Option(2000, "--entries-per-s-per-edge", min=0,
                                                 help="journal entries per second per edge at peak"),
    headroom: float = typer.Option(1.0, "--headroom", min=1, help="spike headroom factor"),
    cp_entries_per_s_per_core: float = typer.Option(CP_ENTRIES_PER_S_PER_CORE, "--cp-entries-per-s-per-core",
                                                    min=0.000001, help="measured: drain benchmark, per replica"),
    entry_bytes: float = typer.Option(ENTRY_WIRE_BYTES, "--entry-bytes", min=0, help="wire bytes per entry"),
    stream_replicas: int = typer.Option(3, "--stream-replicas", min=1, help="JetStream replication"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Control-plane replicas and NATS bytes/s for a region of N edges."""
    p = cloud_plan(edges, entries_per_s_per_edge, headroom=headroom,
                   cp_entries_per_s_per_core=cp_entries_per_s_per_core, entry_bytes=entry_bytes,
                   stream_replicas=stream_replicas)
    typer.echo(json.dumps(asdict(p), sort_keys=True) if as_json else cloud_summary(p))


def video_storage(bitrate_kbps: float, tables: int, retention_days: float, *, hours_per_day: float = 24.0,
                  alarm_ratio: float = 0.85) -> dict[str, float]:
    """Round video evidence kept in-country (docs/OPERATIONS.md): recorded rung bitrate x tables x
    hours a day x retention, and the disk budget that keeps the alarm (`alarm_ratio`) unreached.

    800 kbps x 20 tables x 24 h x 90 days = 100 kB/s x 86,400 s x 20 x 90 = 15.55 TB."""
    _check_non_negative(bitrate_kbps=bitrate_kbps, tables=tables, retention_days=retention_days)
    if not 0 < hours_per_day <= 24 or not 0 < alarm_ratio <= 1:
        raise ValueError("hours_per_day must be in (0, 24] and alarm_ratio in (0, 1]")
    per_table_day = bitrate_kbps * KILO / 8 * hours_per_day * 3600
    total = per_table_day * tables * retention_days
    return {"bitrate_kbps": bitrate_kbps, "tables": tables, "retention_days": retention_days,
            "hours_per_day": hours_per_day, "gb_per_table_day": per_table_day / 1e9,
            "gb_per_day": per_table_day * tables / 1e9, "tb_retained": total / 1e12,
            "budget_tb": total / alarm_ratio / 1e12, "alarm_ratio": alarm_ratio}


@app.command("video")
def video_storage_command(
    bitrate_kbps: float = typer.Option(800, "--bitrate-kbps", min=0, help="bitrate of the recorded rung"),
    tables: int = typer.Option(20, "--tables", min=0, help="fed tables at this edge"),
    retention_days: float = typer.Option(90, "--retention-days", min=0, help="the jurisdiction's retention"),
    hours_per_day: float = typer.Option(24, "--hours-per-day", min=0.01, max=24, help="hours a table runs"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Disk for round clips: bitrate x tables x hours x retention, and the budget to configure."""
    v = video_storage(bitrate_kbps, tables, retention_days, hours_per_day=hours_per_day)
    if as_json:
        typer.echo(json.dumps(v, sort_keys=True))
        return
    typer.echo(f"video:  {bitrate_kbps:g} kbps / 8 x {hours_per_day:g} h = {v['gb_per_table_day']:,.2f} GB per table "
               f"per day x {tables:,} tables = {v['gb_per_day']:,.1f} GB/day\n"
               f"        x {retention_days:g} days retention = {v['tb_retained']:,.2f} TB kept in-country; "
               f"budget {v['budget_tb']:,.2f} TB (alarm at {v['alarm_ratio']:.0%})")


if __name__ == "__main__":
    app()
