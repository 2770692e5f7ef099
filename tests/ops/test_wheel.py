"""The wheel the images install carries what an installed edge needs at run time."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_fairness_doc_wire_shortcuts_and_fast_path(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        # /v1/docs/fairness serves this copy from an installed edge (no source tree there)
        assert z.read("edge_agent/docs/FAIRNESS.md") == (ROOT / "docs" / "FAIRNESS.md").read_bytes()
    assert {"natswire/__init__.py", "natswire/client.py"} <= names
    assert any(n.startswith("edge_agent/media/_fastsend") and n.endswith(".so") for n in names), \
        "the fan-out's C fast path was not built (gcc and Python headers are on every machine here)"
