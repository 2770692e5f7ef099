"""Shared pieces of the sync benchmarks: a private nats-server, the real control plane in its own
process (`control-plane serve`), the cloud's high-water mark read over NATS, machine facts."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import yaml

from contract import sync as S
from tests.support.nats import NatsServer, free_port

SQLITE = "sqlite"


def machine() -> dict[str, Any]:
    return {"machine": f"{os.cpu_count()} vCPU {platform.machine()}", "date": time.strftime("%Y-%m-%d"),
            "load1_at_start": round(os.getloadavg()[0], 2)}


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (this one when pid is None), from /proc."""
    fields = Path(f"/proc/{pid or os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds used by each named process between `start()` and `stop()`: a figure that does
    not depend on what else the machine is running (wall-clock rates on a shared box do)."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.t0: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> None:
        self.t0 = {k: cpu_seconds(p) for k, p in self.pids.items()}

    def add(self, name: str, pid: int | None) -> None:
        """A process started after `start()` (the edge's sync publisher): counted from now."""
        if pid is not None:
            self.pids[name] = pid
            self.t0[name] = cpu_seconds(pid)

    def stop(self) -> dict[str, float]:
        self.used = {k: cpu_seconds(p) - self.t0[k] for k, p in self.pids.items()}
        return self.used

    def per_entry_us(self, n: int) -> dict[str, float]:
        return {f"{k}_cpu_us_per_entry": round(v / n * 1e6, 1) for k, v in self.used.items()} if n else {}


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


class ControlPlaneProc:
    """`control-plane serve --config FILE` in a child process (optionally under cProfile)."""

    def __init__(self, tmp: Path, nats_url: str, database_url: str | None = None, *,
                 fetch_batch: int | None = None, profile: Path | None = None) -> None:
        self.tmp = tmp
        self.port = free_port()
        cfg: dict[str, Any] = {
            "database_url": database_url or f"sqlite:///{tmp / 'cp.db'}",
            "data_dir": str(tmp / "cpdata"), "token_signing_key_path": str(tmp / "cpdata" / "token.pem"),
            "bootstrap_secret": secrets.token_hex(16), "http": {"host": "127.0.0.1", "port": self.port},
            "nats": {"url": nats_url}, "heartbeat_timeout_s": 60,
        }
        if fetch_batch:
            cfg["nats"]["fetch_batch"] = fetch_batch
        (tmp / "cp.yaml").write_text(yaml.safe_dump(cfg))
        self.profile = profile
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ControlPlaneProc:
        args = [sys.executable]
        if self.profile:
            args += ["-m", "cProfile", "-o", str(self.profile)]
        args += ["-m", "control_plane.cli", "serve", "--config", str(self.tmp / "cp.yaml")]
        with open(self.tmp / "cp.log", "wb") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Cloud:
    """Reads what the control plane holds for an edge: its `casino.hwm.<edge>` reply (the contiguous
    seq it has applied, read from its database), over a real NATS connection."""

    def __init__(self, url: str, edge_id: str) -> None:
        self.url, self.subject = url, S.hwm_subject(edge_id)
        self.nc: Any = None

    async def connect(self) -> Cloud:
        self.nc = await nats.connect(self.url, name="sync-bench-probe")
        return self

    async def head(self, timeout: float = 2.0) -> int:
        msg = await self.nc.request(self.subject, b"", timeout=timeout)
        return int(json.loads(msg.data)["seq"])

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the control plane answers (migrations done, consumers up)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.head(timeout=0.5)
                return
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise RuntimeError("control plane did not answer on NATS") from None
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        if self.nc is not None:
            await self.nc.close()


def start_nats(tmp: Path) -> NatsServer:
    return NatsServer(tmp / "nats").start()


def pg_schema_url(admin_url: str) -> tuple[str, str]:
    """A fresh throw-away database on the given PostgreSQL server: (its URL, its name)."""
    import uuid

    import psycopg

    name = f"syncbench_{uuid.uuid4().hex[:10]}"
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}", name


def pg_drop(admin_url: str, name: str) -> None:
    import psycopg

    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def private_cloud(tmp: Path, database_url: str | None, fetch_batch: int | None,
          profile: Path | None) -> Iterator[tuple[NatsServer, CpuMeter, str]]:
    """A private nats-server and the control plane in its own process (on a throw-away PostgreSQL
    database when `database_url` names one): (server, CPU meter, database kind); torn down after."""
    pg_name = None
    url = database_url
    if database_url and database_url.startswith("postgresql"):
        url, pg_name = pg_schema_url(database_url)
    srv = start_nats(tmp)
    try:
        cp = ControlPlaneProc(tmp, srv.url, url, fetch_batch=fetch_batch, profile=profile).start()
        try:
            yield srv, CpuMeter({"cp": cp.proc.pid if cp.proc else None,
                                 "nats": srv.proc.pid if srv.proc else None, "edge": None}), \
                ("postgresql" if pg_name else "sqlite")
        finally:
            cp.stop()
    finally:
        srv.stop()
        if pg_name:
            pg_drop(database_url, pg_name)  # type: ignore[arg-type]
