"""Both example jurisdictions provisioned by `site.yml` and money moving through them.

One run of the real playbook on localhost (throw-away prefixes) provisions the control plane and
two edges with the example inventory's group_vars, Malta (EUR) and Ontario (CAD, with its strict
residency policy and deposit-limit defaults). The installed services are then started on a real
nats-server; in each jurisdiction a player passes KYC, deposits (edge journal -> NATS -> PSP
simulator -> credit command) and withdraws (-> bank rail -> PayoutResult -> the edge), so an
inventory whose residency policy empties the money entries would fail here.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from contract import tokens
from edge_agent.sync import nats_auth
from tests.ops.test_ansible import ANSIBLE, ROOT, _create_streams, _free_port, _tool
from tests.support.nats import NatsServer

EDGES = {"malta": ("edge-mt-t", "MT", "EUR"), "ontario": ("edge-on-t", "CA-ON", "CAD")}


def until(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = pred()
        except (httpx.HTTPError, KeyError, IndexError):
            value = None
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for: {what}")


def kyc_document(psn: str) -> bytes:
    """A document the simulated vendor verifies (its reference does not contain "edd")."""
    for i in range(1000):
        doc = f"passport-{i}".encode()
        if "edd" not in hashlib.sha256(psn.encode() + doc).hexdigest()[:24]:
            return doc
    raise AssertionError("no such document")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def casino(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("jurisdictions")
    key = tokens.new_signing_key()
    passwords = {edge_id: secrets.token_hex(12) for edge_id, _, _ in EDGES.values()}
    nats = NatsServer(tmp / "nats", config=nats_auth.server_config(
        list(passwords.items()), "cloud-pw", store_dir="{store}")).start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        import asyncio

        asyncio.run(_create_streams(nats.url))
        source = tmp / "source"
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
            ".venv", ".git", ".hypothesis", ".pytest_cache", ".ruff_cache", "artifacts", "__pycache__", "node_modules",
            "*.egg-info", "build", "var", "tests", "benchmarks", "*.db", "*.db-*"))
        venv = tmp / "venv"  # one virtualenv for the three services (same package)
        local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        hosts: dict[str, Any] = {}
        ports: dict[str, int] = {}
        for group, (edge_id, _, _) in EDGES.items():
            ports[edge_id] = _free_port()
            prefix = tmp / edge_id
            prefix.mkdir()
            hosts[group] = {"hosts": {edge_id: {
                **local, "edge_id": edge_id, "edge_prefix": str(prefix), "edge_http_port": ports[edge_id],
                "edge_nats_password": passwords[edge_id],
                "edge_litestream_replica_url": f"file://{prefix}/var/lib/edge-agent/replica",
                "edge_litestream_metrics_addr": f"127.0.0.1:{_free_port()}"}}}
        ports["cp"] = _free_port()
        cp_prefix = tmp / "cp"
        cp_prefix.mkdir()
        inv = tmp / "inventory"
        shutil.copytree(ANSIBLE / "inventories" / "example" / "group_vars", inv / "group_vars")
        (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {
            "edges": {"children": hosts},
            "control_plane": {"hosts": {"cp-t": {**local}}}}}}))
        user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
        extra = tmp / "extra.yml"
        extra.write_text(yaml.safe_dump({
            "edge_become": False, "control_plane_become": False,
            "edge_service_manager": "none", "control_plane_service_manager": "none",
            "edge_manage_apt": False, "edge_manage_user": False, "edge_service_user": user,
            "control_plane_manage_apt": False, "control_plane_manage_user": False, "control_plane_service_user": user,
            "livecasino_package_source": str(source), "edge_python": sys.executable,
            "control_plane_python": sys.executable, "edge_venv": str(venv), "control_plane_venv": str(venv),
            "edge_http_host": "127.0.0.1", "nats_cluster_url": nats.url,
            "edge_residency_key_hex": secrets.token_hex(32), "edge_token_public_key_pem": tokens.public_pem(key),
            "edge_litestream_s3_endpoint": "",
            "control_plane_prefix": str(cp_prefix), "control_plane_http_host": "127.0.0.1",
            "control_plane_http_port": ports["cp"], "control_plane_database_url": f"sqlite:///{cp_prefix}/cp.db",
            "control_plane_nats_user": nats_auth.CLOUD_USER, "control_plane_nats_password": "cloud-pw",
            "control_plane_extra_config": {"kyc": {"vendor_delay_s": 0.2}, "heartbeat_timeout_s": 10},
        }))
        env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_LOCAL_TEMP": str(tmp / "at"), "ANSIBLE_HOME": str(tmp / "ah"),
               "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
        # --forks 1: the three hosts share one virtualenv, so their pip installs must not overlap.
        proc = subprocess.run([_tool("ansible-playbook"), "--forks", "1", "-i", str(inv / "hosts.yml"),
                               "-e", f"@{extra}", str(ANSIBLE / "site.yml")], capture_output=True, text=True,
                              env=env, cwd=ANSIBLE, timeout=600, check=False)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
        # The control plane's token key, the one whose public half the role gave the edges.
        cp_data = cp_prefix / "var/lib/control-plane"
        (cp_data / "token-signing.pem").write_text(tokens.private_pem(key))
        cp_cfg = cp_prefix / "etc/control-plane/control-plane.yaml"
        with open(tmp / "cp.log", "ab") as log:
            procs.append(subprocess.Popen([str(venv / "bin/control-plane"), "serve", "--config", str(cp_cfg)],
                                          stdout=log, stderr=subprocess.STDOUT))
        cp = f"http://127.0.0.1:{ports['cp']}"
        until(lambda: httpx.get(f"{cp}/healthz", timeout=2).status_code == 200, 60, "control plane healthy")
        for edge_id, _, _ in EDGES.values():
            etc = tmp / edge_id / "etc/edge-agent"
            with open(tmp / f"{edge_id}.log", "ab") as log:
                procs.append(subprocess.Popen([str(venv / "bin/edge-agent"), "serve", "--config", str(etc / "edge.yaml")],
                                              cwd=tmp / edge_id / "var/lib/edge-agent", stdout=log,
                                              stderr=subprocess.STDOUT))
        for edge_id, _, _ in EDGES.values():
            until(lambda e=edge_id: httpx.get(f"http://127.0.0.1:{ports[e]}/healthz", timeout=2)
                  .json()["checks"]["sync"]["detail"]["connected"], 60, f"{edge_id} healthy and connected")
        yield {"tmp": tmp, "key": key, "ports": ports, "cp": cp}
    finally:
        for p in reversed(procs):
            _stop(p)
        nats.stop()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("group", sorted(EDGES))
def test_deposit_and_withdrawal_through_the_control_plane(casino: dict[str, Any], group: str) -> None:
    edge_id, jur, currency = EDGES[group]
    cfg = yaml.safe_load((casino["tmp"] / edge_id / "etc/edge-agent/edge.yaml").read_text())
    assert (cfg["jurisdiction"], cfg["currency"]) == (jur, currency)  # the inventory's group_vars
    edge = httpx.Client(base_url=f"http://127.0.0.1:{casino['ports'][edge_id]}", timeout=10,
                        headers={"Authorization": f"Bearer {tokens.issue(casino['key'], f'player-{group}', 'player', jur)}"})
    psn = edge.get("/v1/me").json()["player"]
    assert edge.post("/v1/kyc", content=kyc_document(psn)).status_code == 202
    until(lambda: edge.get("/v1/wallet").json()["kyc"] == "verified", 60, f"{jur} KYC verified by the cloud")

    r = edge.post("/v1/wallet/deposits", json={"amount": 50_000, "method": "card"})
    assert r.status_code == 202, r.text
    until(lambda: edge.get("/v1/wallet").json()["balance"] == 50_000, 60, f"{jur} deposit credited by the cloud")

    r = edge.post("/v1/wallet/withdrawals", json={"amount": 20_000, "rail": "bank"})
    assert r.status_code == 202, r.text
    wid = r.json()["withdrawal_id"]
    assert edge.get("/v1/wallet").json()["balance"] == 30_000
    until(lambda: {w["withdrawal_id"]: w["status"] for w in edge.get("/v1/wallet/withdrawals").json()}.get(wid) == "paid",
          90, f"{jur} withdrawal paid by the bank rail")
    # ... and the cloud holds both, in the jurisdiction's currency
    op = tokens.issue(casino["key"], "ops", "operator", jur)
    cp = httpx.Client(base_url=casino["cp"], timeout=10, headers={"Authorization": f"Bearer {op}"})
    w = cp.get(f"/v1/withdrawals/{wid}").json()
    assert (w["currency"], w["amount"], w["jurisdiction"]) == (currency, 20_000, jur), w
