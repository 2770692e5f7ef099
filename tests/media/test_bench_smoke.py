"""The media benchmarks run and print their JSON line (short runs; figures are not checked)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["benchmarks.media.glass_to_glass", "--seconds", "4"],
    ["benchmarks.media.viewers", "--viewers", "20", "--procs", "1", "--seconds", "3"],
    ["benchmarks.media.egress", "--viewers", "8", "--seconds", "3"],
])
def test_media_benchmark_prints_json(args: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=240, check=True)
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last["bench"] in ("glass_to_glass", "viewers", "egress_abr")
