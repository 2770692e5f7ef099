"""Capacity planner: the seed's worked example exactly, and properties of the arithmetic."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from edge_agent import capacity as cap

rates = st.floats(min_value=0, max_value=50_000, allow_nan=False, allow_infinity=False)
counts = st.integers(min_value=0, max_value=10_000_000)
factors = st.floats(min_value=1, max_value=10, allow_nan=False, allow_infinity=False)


def test_seed_egress_example() -> None:
    # 800 kbps x 1,200 streams = 960,000 kbps = 120,000 kB/s ~ 120 MB/s; x2 -> 240 MB/s
    assert cap.egress_kbytes_per_s(800, 1200) == 120_000
    assert cap.egress_mbytes_per_s(800, 1200) == 120
    assert cap.egress_mbytes_per_s(800, 1200, redundancy=2) == 240
    assert cap.egress_gbits_per_s(800, 1200) == pytest.approx(0.96)


def test_seed_bet_throughput_example() -> None:
    # 2,000 BPS x 1 KB -> 2 MB/s
    assert cap.bet_throughput_bytes_per_s(2000, 1000) == 2_000_000
    p = cap.plan(800, 1200, 2000)
    assert (p.egress_mb_s, p.egress_mb_s_redundant, p.bet_mb_s) == (120, 240, 2)
    assert p.edges is None


def test_edges_from_measurements() -> None:
    # ~180 viewers per core (stock aiortc, ANCHORS) on 2 cores: 1,200 viewers -> 4 edges;
    # the bet path (20k bets/s per edge) needs 1; a 1 Gbit/s NIC carries 0.96 Gbit/s -> 1.
    p = cap.plan(800, 1200, 2000, viewers_per_core=180, cores_per_edge=2, bets_per_s_per_edge=20_000,
                 nic_gbit_s=1)
    assert (p.edges_for_media, p.edges_for_bets, p.edges_for_network) == (4, 1, 1)
    assert p.edges == 4 and p.bound_by == "media"
    p2 = cap.plan(800, 1200, 2000, viewers_per_core=180, cores_per_edge=2, headroom=2)
    assert p2.edges == 7  # ceil(2400 / 360)
    p3 = cap.plan(800, 1200, 50_000, bets_per_s_per_edge=20_000)
    assert p3.edges == 3 and p3.bound_by == "bets"
    assert cap.edges_needed(1200, 200) == 6  # exact division stays exact
    assert cap.edges_needed(0, 200) == 0
    assert cap.edges_needed(1, 200) == 1


@pytest.mark.parametrize("call", [
    lambda: cap.egress_kbytes_per_s(-1, 10),
    lambda: cap.egress_kbytes_per_s(800, -1),
    lambda: cap.egress_kbytes_per_s(800, 10, redundancy=0.5),
    lambda: cap.bet_throughput_bytes_per_s(-5, 1000),
    lambda: cap.edges_needed(10, 0),
    lambda: cap.edges_needed(10, 5, headroom=0.9),
])
def test_rejects_nonsense(call) -> None:
    with pytest.raises(ValueError):
        call()


@given(rates, counts, counts)
def test_egress_monotone_in_streams(kbps: float, a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert cap.egress_kbytes_per_s(kbps, lo) <= cap.egress_kbytes_per_s(kbps, hi)


@given(rates, rates, counts)
def test_egress_monotone_in_bitrate(a: float, b: float, n: int) -> None:
    lo, hi = sorted((a, b))
    assert cap.egress_kbytes_per_s(lo, n) <= cap.egress_kbytes_per_s(hi, n)


@given(rates, counts, factors)
def test_redundancy_scales_linearly(kbps: float, n: int, r: float) -> None:
    base = cap.egress_kbytes_per_s(kbps, n)
    assert cap.egress_kbytes_per_s(kbps, n, r) == pytest.approx(base * r, rel=1e-12, abs=1e-9)
    assert cap.egress_kbytes_per_s(kbps, n, r) >= base


@given(rates, st.floats(min_value=0, max_value=100_000, allow_nan=False))
def test_bet_throughput_is_product(bps: float, payload: float) -> None:
    assert cap.bet_throughput_bytes_per_s(bps, payload) == pytest.approx(bps * payload)


@given(counts, counts, st.floats(min_value=1, max_value=10_000), factors)
def test_edges_monotone_and_sufficient(a: int, b: int, per_edge: float, headroom: float) -> None:
    lo, hi = sorted((a, b))
    n_lo, n_hi = cap.edges_needed(lo, per_edge, headroom), cap.edges_needed(hi, per_edge, headroom)
    assert n_lo <= n_hi
    # enough edges for the demand with headroom (up to float rounding), and not one too many
    assert n_hi * per_edge >= hi * headroom * (1 - 1e-9)
    if n_hi > 1:
        assert (n_hi - 1) * per_edge < hi * headroom


@given(counts, st.floats(min_value=1, max_value=10_000), factors, factors)
def test_more_headroom_never_fewer_edges(n: int, per_edge: float, h1: float, h2: float) -> None:
    lo, hi = sorted((h1, h2))
    assert cap.edges_needed(n, per_edge, lo) <= cap.edges_needed(n, per_edge, hi)


def test_cli_human_and_json() -> None:
    runner = CliRunner()
    r = runner.invoke(cap.app, [])
    assert r.exit_code == 0, r.output
    assert "120.0 MB/s" in r.output and "240.0 MB/s" in r.output and "2.00 MB/s" in r.output
    r = runner.invoke(cap.app, ["--json", "--viewers-per-core", "180", "--cores-per-edge", "2",
                                "--bets-per-s-per-edge", "20000", "--streams", "3000"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    assert out["egress_mb_s"] == 300 and out["egress_mb_s_redundant"] == 600
    assert out["edges_for_media"] == 9 and out["edges"] == 9 and out["bound_by"] == "media"
    r = runner.invoke(cap.app, ["--redundancy", "0.5"])
    assert r.exit_code != 0


def test_mounts_as_edge_agent_capacity() -> None:
    """The lead mounts `app` under the edge-agent CLI: `edge-agent capacity --json` must work."""
    import typer

    parent = typer.Typer()

    @parent.command()
    def other() -> None:  # a second command, as in the real CLI
        pass

    parent.add_typer(cap.app, name="capacity")
    r = CliRunner().invoke(parent, ["capacity", "--json", "--bets-per-s", "4000"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["bet_mb_s"] == 4


def test_cloud_plan_for_the_issue_region() -> None:
    # 30 jurisdictions x 2,000 entries/s = 60,000/s; at 17,000/s per replica 4 carry it, +1 to lose one
    p = cap.cloud_plan(30, 2000, cp_entries_per_s_per_core=17_000)
    assert (p.entries_per_s, p.replicas_for_load, p.replicas) == (60_000, 4, 5)
    assert p.edge_fits_one_replica
    assert p.nats_ingress_mb_s == pytest.approx(60_000 * cap.ENTRY_WIRE_BYTES / 1e6)
    assert p.nats_replication_mb_s == pytest.approx(2 * p.nats_ingress_mb_s)  # R3: two follower copies


def test_cloud_plan_small_region_keeps_two_and_flags_a_hot_edge() -> None:
    assert cap.cloud_plan(1, 10).replicas == 2  # never a single point of failure
    assert cap.cloud_plan(0, 0).replicas == 2
    hot = cap.cloud_plan(2, 30_000, cp_entries_per_s_per_core=17_000)
    assert not hot.edge_fits_one_replica and "one edge sends more" in cap.cloud_summary(hot)
    with pytest.raises(ValueError):
        cap.cloud_plan(-1, 10)


@given(edges=st.integers(min_value=0, max_value=10_000), rate=rates, headroom=factors)
def test_cloud_replicas_cover_the_load_with_one_to_spare(edges, rate, headroom) -> None:
    p = cap.cloud_plan(edges, rate, headroom=headroom)
    assert (p.replicas - 1) * p.cp_entries_per_s_per_replica >= p.entries_per_s * headroom * (1 - 1e-9)
    assert p.replicas >= 2


def test_cloud_cli_json() -> None:
    out = CliRunner().invoke(cap.app, ["cloud", "--edges", "30", "--entries-per-s-per-edge", "2000", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["replicas"] == cap.cloud_plan(30, 2000).replicas
