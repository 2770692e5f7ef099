"""The capacity planner's storage arithmetic for round clips (docs/OPERATIONS.md section 6)."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edge_agent.capacity import video_storage
from edge_agent.cli import app


def test_bitrate_times_tables_times_retention():
    v = video_storage(800, 20, 90)
    assert v["gb_per_table_day"] == pytest.approx(8.64)          # 100 kB/s x 86,400 s
    assert v["tb_retained"] == pytest.approx(8.64 * 20 * 90 / 1000)
    assert v["budget_tb"] == pytest.approx(v["tb_retained"] / 0.85)
    assert video_storage(800, 20, 90, hours_per_day=12)["tb_retained"] == pytest.approx(v["tb_retained"] / 2)
    with pytest.raises(ValueError):
        video_storage(-1, 1, 1)


def test_cli_prints_the_arithmetic():
    out = CliRunner().invoke(app, ["capacity", "video", "--bitrate-kbps", "250", "--tables", "4", "--retention-days",
                                   "30", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["tb_retained"] == pytest.approx(250e3 / 8 * 86400 * 4 * 30 / 1e12)
