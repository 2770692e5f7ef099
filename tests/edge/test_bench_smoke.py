"""The bets benchmark runs end to end and prints the CONTRACT JSON line (figures are not
asserted here: speed targets live in docs/BENCHMARKS.md, measured with RUN_SLOW=1)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _bench(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.edge.bets", *args], capture_output=True, text=True, check=False,
                         timeout=600, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_bets_benchmark_prints_contract_line():
    line = _bench("--duration", "1", "--conns", "4")
    assert line["bench"] == "bets"
    assert line["ws_bets_per_s"] > 0 and line["http_bets_per_s"] > 0
    assert line["ws_p99_ms"] >= line["ws_p50_ms"] > 0


def test_bets_sync_ratio_prints_contract_line():
    """Sync off then on in one run: the ratio, the lag read from the edge, CPU per process."""
    line = _bench("--sync-ratio", "--duration", "1", "--conns", "4")
    assert line["bench"] == "bets_sync_ratio" and line["ratio"] > 0
    assert line["lag_max_sync_on"] is not None and line["drain_s_sync_on"] is not None
    assert line["cpu_s_sync_on"]["edge_children"] > 0  # the publisher, in its own process
    assert "nats_server" in line["cpu_s_sync_on"] and "nats_server" not in line["cpu_s_sync_off"]


@pytest.mark.slow
def test_bets_benchmark_full():
    line = _bench("--duration", "10", "--conns", "64")
    print(json.dumps(line))
    assert line["ws_bets_per_s"] > 0


def test_blackjack_benchmark_prints_contract_line():
    """Tiny N: players in their own process over real WebSockets, deciding in every step."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.edge.blackjack", "--players", "6", "--rounds", "1",
                          "--window", "2", "--spread", "0.1"], capture_output=True, text=True, timeout=300, check=False,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    line = json.loads(out.stdout.strip().splitlines()[-1])
    assert line["bench"] == "blackjack" and line["connected"] == 6
    assert line["settled"] == 6 and line["settle_p99_ms"] >= line["settle_p50_ms"] > 0
    # Arrival at the player's socket (kernel receive time) comes before the load process reads it.
    assert 0 < line["settle_arr_max_ms"] <= line["settle_max_ms"] + 1
    assert line["journal_commits"] > 0 and line["journal_commits_over_500ms"] <= line["journal_commits"]
    if line["decisions"]:  # a shared blackjack deal leaves nothing to decide
        assert line["ack_p99_ms"] >= line["ack_p50_ms"] > 0
        assert 0 < line["ack_arr_p50_ms"] <= line["ack_p50_ms"] + 1
