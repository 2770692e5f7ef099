"""`control-plane migrate` and `control-plane serve` as a real process."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from sqlalchemy import create_engine, inspect
from typer.testing import CliRunner

from control_plane.cli import app
from tests.support.nats import NatsServer, free_port


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    db = tmp_path / "cp.db"
    cfg = tmp_path / "cp.yaml"
    cfg.write_text(yaml.safe_dump({"database_url": f"sqlite:///{db}"}))
    result = CliRunner().invoke(app, ["migrate", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    tables = set(inspect(create_engine(f"sqlite:///{db}")).get_table_names())
    assert {"alembic_version", "entries", "edge_sync", "withdrawals", "commands", "checkpoints"} <= tables


def test_serve_runs_and_stops(tmp_path: Path) -> None:
    nats = NatsServer(tmp_path / "nats").start()
    port = free_port()
    cfg = tmp_path / "cp.yaml"
    cfg.write_text(yaml.safe_dump({
        "database_url": f"sqlite:///{tmp_path / 'cp.db'}", "data_dir": str(tmp_path / "data"),
        "token_signing_key_path": str(tmp_path / "data" / "key.pem"),
        "nats": {"url": nats.url}, "http": {"port": port}}))
    proc = subprocess.Popen([sys.executable, "-m", "control_plane.cli", "serve", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        body = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and body is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                body = r.json()
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                time.sleep(0.1)
        assert body == {"ok": True, "nats": True}
        assert (tmp_path / "data" / "key.pem").exists()  # generated on first start
    finally:
        proc.terminate()
        assert proc.wait(15) == 0  # graceful: systemd / Kubernetes see a clean stop
        nats.stop()
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert "control plane stopped" in out, out
