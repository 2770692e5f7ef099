"""`make bench`: every benchmark has quick settings, and the runner prints a table of JSON lines."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scripts.bench_all import QUICK, discover, last_json, table

ROOT = Path(__file__).resolve().parents[2]


def test_every_benchmark_has_quick_settings() -> None:
    found = discover()
    assert len(found) >= 8 and "benchmarks.edge.bets" in found
    assert set(found) == set(QUICK), (set(found) ^ set(QUICK))
    assert "scripts/bench-all.sh" in (ROOT / "Makefile").read_text()
    assert (ROOT / "scripts" / "bench-all.sh").exists()


def test_last_json_line_and_table() -> None:
    assert last_json('warming up\n{"bench": "x", "p99_ms": 3}\n') == {"bench": "x", "p99_ms": 3}
    assert last_json('{"bench": "x"}\ntrailing text\n') is None  # the JSON line must be the last
    assert last_json('{"no_bench_key": 1}') is None
    out = table([{"module": "benchmarks.a.b", "status": "ok", "seconds": 1.0, "result": {"bench": "b", "bps": 10}},
                 {"module": "benchmarks.c.d", "status": "exit 1", "seconds": 2.0, "result": None}])
    lines = out.splitlines()
    assert lines[0].split() == ["benchmark", "bench", "status", "s", "figures"]
    assert "a.b" in lines[2] and "bps=10" in lines[2] and "exit 1" in lines[3]


def test_runner_runs_a_real_benchmark() -> None:
    proc = subprocess.run([sys.executable, "scripts/bench_all.py", "--only", "benchmarks.media.sendpath",
                           "--timeout", "120"], cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = proc.stdout.splitlines()[2]
    assert row.startswith("media.sendpath") and " ok " in row and "frames=500" in row
