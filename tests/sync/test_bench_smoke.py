"""The sync benchmarks (benchmarks/sync) run end to end and print the CONTRACT benchmark line:
a few seconds each in the default suite; the full-size runs are `slow` (RUN_SLOW=1)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench(module: str, *args: str, timeout: float = 300) -> dict:
    out = subprocess.run([sys.executable, "-m", module, *args], check=False, cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    last = json.loads(out.stdout.strip().splitlines()[-1])  # CONTRACT: the last line is one JSON object
    assert isinstance(last, dict) and isinstance(last.get("bench"), str)
    return last


def test_lag_benchmark_prints_its_line() -> None:
    r = bench("benchmarks.sync.lag", "--rate", "300", "--duration", "3", "--warmup", "0.5", "--players", "20")
    assert r["bench"] == "sync_lag"
    assert r["entries"] > 300 and r["unapplied"] == 0
    assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
    for k in ("machine", "date", "load1_at_start", "rate_per_s", "achieved_per_s"):
        assert k in r


def test_drain_benchmark_prints_its_line() -> None:
    r = bench("benchmarks.sync.drain", "--entries", "3000", "--timeout", "120")
    assert r["bench"] == "sync_drain"
    assert r["entries"] >= 3000 and r["head_hash_ok"] is True
    assert r["drain_entries_per_s"] > 0 and r["publish_entries_per_s"] >= r["drain_entries_per_s"]
    for k in ("machine", "date", "load1_at_start", "drain_s", "publish_s"):
        assert k in r


@pytest.mark.slow
def test_lag_at_2000_per_s_full_run() -> None:
    r = bench("benchmarks.sync.lag", "--rate", "2000", "--duration", "25", timeout=600)
    assert r["unapplied"] == 0 and r["achieved_per_s"] >= 1900
    assert r["p99_ms"] <= 250, r


@pytest.mark.slow
def test_drain_of_a_million_entries_full_run() -> None:
    r = bench("benchmarks.sync.drain", "--entries", "1000000", timeout=1800)
    assert r["head_hash_ok"] is True and r["entries"] >= 1_000_000
    assert r["drain_entries_per_s"] >= 20_000, r


@pytest.mark.slow
@pytest.mark.postgres
def test_replicas_benchmark_with_a_replica_killed_prints_its_line() -> None:
    r = bench("benchmarks.sync.replicas", "--replicas", "2", "--edges", "2", "--entries", "20000", "--kill-one",
              "--timeout", "300", timeout=600)
    assert r["bench"] == "sync_replicas" and r["replicas"] == 2 and r["entries"] >= 40_000
    assert r["drain_entries_per_s"] > 0 and r["cp_cpu_us_per_entry"] > 0 and r["failover_s"] is not None
