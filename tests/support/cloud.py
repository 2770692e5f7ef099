"""The cloud as operators run it, for tests and benchmarks: control-plane replicas as real
`control-plane serve` processes on one throw-away PostgreSQL database, and who holds which lease."""
from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from control_plane.adapters.db import leases as L
from tests.support.nats import free_port

PG_ADMIN = os.environ.get("CONTROL_PLANE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=2):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server to test against"
        return f"PostgreSQL at {PG_ADMIN} does not answer ({exc.__class__.__name__}: {exc})"


@contextlib.contextmanager
def pg_database(prefix: str = "cloud") -> Iterator[str]:
    """A fresh database on the test server: its SQLAlchemy URL; dropped afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


class Replica:
    """One control-plane replica: `control-plane serve` in its own process."""

    def __init__(self, tmp: Path, name: str, database_url: str, nats_urls: list[str], **overrides: Any) -> None:
        self.name, self.dir = name, tmp / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        cfg: dict[str, Any] = {
            "database_url": database_url, "data_dir": str(self.dir / "data"), "migrate_on_start": False,
            "token_signing_key_path": str(tmp / "token.pem"), "bootstrap_secret": secrets.token_hex(16),
            "http": {"host": "127.0.0.1", "port": self.port}, "replica": name,
            "nats": {"url": nats_urls, "stream_replicas": 3 if len(nats_urls) >= 3 else 1, "ack_wait_s": 2,
                     "rebalance_s": 0.5},
            "heartbeat_timeout_s": 60, "processor_interval_s": 0.1, "kyc": {"vendor": "none"},
        }
        for k, v in overrides.items():
            cfg[k] = {**cfg[k], **v} if isinstance(v, dict) and isinstance(cfg.get(k), dict) else v
        self.config = self.dir / "cp.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def migrate(self) -> None:
        subprocess.run([sys.executable, "-m", "control_plane.cli", "migrate", "--config", str(self.config)],
                       check=True, capture_output=True, timeout=120)

    def start(self) -> Replica:
        with open(self.dir / "cp.log", "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "control_plane.cli", "serve", "--config",
                                          str(self.config)], stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"replica {self.name} exited: {(self.dir / 'cp.log').read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"replica {self.name} not healthy in {timeout}s")

    def kill(self) -> None:
        """kill -9: no shutdown, no lease released by hand (its connection dies with it)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def lease_holders(database_url: str, ns: int, names: list[str]) -> dict[str, str]:
    """name -> replica holding its advisory lock now (from pg_locks; absent when free)."""
    import psycopg

    keys = {L.lock_key(n): n for n in names}
    with psycopg.connect(plain(database_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT l.objid::bigint, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s",
            (ns % 2**32,)).fetchall()
    out: dict[str, str] = {}
    for objid, app in rows:
        signed = objid - 2**32 if objid >= 2**31 else objid
        if signed in keys:
            out[keys[signed]] = app.removeprefix(L.APP_PREFIX)
    return out
