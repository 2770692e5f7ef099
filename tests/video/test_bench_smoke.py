"""The video benchmarks run and print their JSON line (short runs; figures are not checked)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["benchmarks.video.recording", "--seconds", "6", "--round-s", "2"],
    ["benchmarks.video.vision", "--reveals", "6", "--faults", "3"],
    ["benchmarks.video.fed", "--reveals", "3", "--studio-height", "360"],
])
def test_video_benchmark_prints_json(args: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=240, check=True)
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last["bench"] in ("video_recording", "video_vision", "video_vision_fed")
