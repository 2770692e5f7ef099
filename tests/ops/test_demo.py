"""`make demo`, headless: every part starts and answers, the deposit round trip through the cloud
credits both players, discovery sends each player to their own jurisdiction's edge, and the
clean stop leaves journals that verify."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(420)
def test_demo_runs_headless_and_every_part_answers(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "edge_agent.demo", "--root", str(root), "--seconds", "3"],
                          capture_output=True, text=True, timeout=400)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    report = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    assert report["ok"] is True
    assert set(report["parts"]) >= {"nats-server", "control plane", "edge mt-1 (Malta)", "edge on-1 (Ontario)",
                                   "studio Malta roulette-1", "studio Ontario roulette-1"}
    assert all(report["parts"].values())
    assert report["credited"] == {"mt-1": 50_000, "on-1": 50_000}
    assert report["discovery"] == {"mt-1": "mt-1", "on-1": "on-1"}
    # progress was shown, and the clean stop verified both journals
    assert "[1/" in out and "is up" in out
    for edge in ("mt-1", "on-1"):
        assert f"{edge} journal:" in out and "FAILED" not in out
        assert (root / edge / "journal.db").exists()
        assert any((root / edge / "replica").rglob("*")), "Litestream replicated nothing"
