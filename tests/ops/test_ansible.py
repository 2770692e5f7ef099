"""The edge playbook, for real: localhost into a throw-away root prefix, twice (the second run
changes nothing), then the installed edge is started and answers healthy; Litestream from the
installed virtualenv replicates its journal to the file replica the role configured.

Also: ansible-lint at its production profile over the whole `ansible/` tree.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from edge_agent.sync import nats_auth
from tests.support.nats import NatsServer

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "ansible"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not installed (pip install -e '.[dev]')")
    return found


async def _create_streams(url: str) -> None:
    import nats as nats_client

    from edge_agent.sync.streams import ensure_streams

    nc = await nats_client.connect(url, user=nats_auth.CLOUD_USER, password="cloud-pw")
    try:
        await ensure_streams(nc.jetstream())
    finally:
        await nc.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_playbook(inventory: Path, extra: Path, env: dict[str, str], playbook: str = "edge.yml",
                  host: str = "edge-test-1") -> tuple[str, dict[str, int]]:
    proc = subprocess.run(check=False, args=[_tool("ansible-playbook"), "-i", str(inventory), "-e", f"@{extra}",
                           str(ANSIBLE / playbook)], capture_output=True, text=True, env=env,
                          cwd=ANSIBLE, timeout=240)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    m = re.search(rf"^{host}\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out, re.MULTILINE)
    assert m, out[-3000:]
    ok, changed, unreachable, failed = map(int, m.groups())
    return out, {"ok": ok, "changed": changed, "unreachable": unreachable, "failed": failed}


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    tmp = tmp_path_factory.mktemp("ansible")
    prefix = tmp / "root"
    prefix.mkdir()
    port = _free_port()
    # The example inventory's per-jurisdiction group_vars (Malta) apply to the test host too.
    inv_dir = tmp / "inventory"
    shutil.copytree(ANSIBLE / "inventories" / "example" / "group_vars", inv_dir / "group_vars")
    (inv_dir / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"edges": {"children": {
        "malta": {"hosts": {"edge-test-1": {"ansible_connection": "local",
                                            "ansible_python_interpreter": sys.executable}}}}}}}}))
    # A snapshot of the checkout as the offline package source: the working tree may change
    # between the two runs (and pip should not write build files into it).
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", ".hypothesis", ".pytest_cache", ".ruff_cache", "artifacts", "__pycache__",
        "*.egg-info", "build", "var", "tests", "benchmarks", "node_modules", "*.db", "*.db-*"))
    from contract import tokens

    key = tokens.new_signing_key()
    # A NATS server that knows this edge only by its own locked-down user (edge_agent.sync.nats_auth),
    # with the streams the cloud creates.
    nats_password = secrets.token_hex(12)
    nats = NatsServer(tmp / "nats", config=nats_auth.server_config(
        [("edge-test-1", nats_password)], "cloud-pw", store_dir="{store}")).start()
    request.addfinalizer(nats.stop)
    asyncio.run(_create_streams(nats.url))
    extra = tmp / "extra.yml"
    extra.write_text(yaml.safe_dump({
        "edge_id": "edge-test-1",
        "edge_become": False,
        "edge_prefix": str(prefix),
        "edge_service_manager": "none",
        "edge_manage_apt": False,
        "edge_manage_user": False,
        "edge_service_user": "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody"),
        "edge_package_source": str(source),
        "edge_python": sys.executable,
        "edge_http_host": "127.0.0.1",
        "edge_http_port": port,
        "edge_nats_url": nats.url,
        "edge_nats_password": nats_password,
        "edge_residency_key_hex": secrets.token_hex(32),
        "edge_token_public_key_pem": tokens.public_pem(key),
        "edge_litestream_replica_url": f"file://{prefix}/var/lib/edge-agent/replica",
        "edge_litestream_s3_endpoint": "",
        "edge_litestream_metrics_addr": (litestream_addr := f"127.0.0.1:{_free_port()}"),
        "edge_tables": [{"table_id": "mt-roulette-1", "game": "roulette", "betting_window_s": 1,
                         "reveal_s": 0.2}],
    }))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"), "ANSIBLE_HOME": str(tmp / "ansible-home"),
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    _, first_recap = _run_playbook(inv_dir / "hosts.yml", extra, env)
    second, second_recap = _run_playbook(inv_dir / "hosts.yml", extra, env)
    return {"nats": nats, "nats_password": nats_password, "prefix": prefix, "port": port,
            "litestream_addr": litestream_addr, "first": first_recap, "second": second_recap,
            "second_out": second, "tmp": tmp, "env": env, "source": source}


def test_first_run_provisions_and_second_changes_nothing(provisioned) -> None:
    assert provisioned["first"]["failed"] == 0 and provisioned["first"]["changed"] > 0
    assert provisioned["second"]["failed"] == 0
    assert provisioned["second"]["changed"] == 0, provisioned["second_out"][-4000:]


def test_rendered_files(provisioned) -> None:
    prefix: Path = provisioned["prefix"]
    etc = prefix / "etc" / "edge-agent"
    cfg = yaml.safe_load((etc / "edge.yaml").read_text())
    assert cfg["edge_id"] == "edge-test-1"
    # per-jurisdiction variables from group_vars/malta.yml
    assert cfg["jurisdiction"] == "MT" and cfg["currency"] == "EUR"
    assert cfg["regulator_access"]["regulator"] == "MGA"
    assert cfg["responsible_gambling"]["reality_check_minutes"] == 60
    assert cfg["db_path"] == str(prefix / "var/lib/edge-agent/journal.db")
    # the edge's own NATS credentials
    assert cfg["nats"] == {"url": provisioned["nats"].url, "user": "edge-edge-test-1",
                           "password": provisioned["nats_password"]}
    assert (etc / "residency.key").stat().st_mode & 0o077 == 0o040
    from edge_agent.config import load_config

    assert load_config(etc / "edge.yaml").residency_key()  # the edge accepts what the role wrote
    units = prefix / "etc" / "systemd" / "system"
    unit = (units / "edge-agent.service").read_text()
    assert f"ExecStart={prefix}/opt/edge-agent/venv/bin/edge-agent serve --config {etc}/edge.yaml" in unit
    assert "KillSignal=SIGTERM" in unit
    assert "litestream replicate -config" in (units / "edge-litestream.service").read_text()
    # with edge_service_manager=none nothing is enabled
    assert not (units / "multi-user.target.wants").exists()
    analyze = shutil.which("systemd-analyze")
    if analyze:  # the units would load: directives parse, ExecStart binaries exist and run
        proc = subprocess.run(check=False, args=[analyze, "verify", "edge-agent.service", "edge-litestream.service"],
                              cwd=units, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and not proc.stderr.strip(), proc.stdout + proc.stderr


ANSIBLE_DEFAULT_CONFIG_DIR = "/etc/edge-agent"  # edge_prefix "" in this render


def test_nats_credentials_rendered(tmp_path: Path) -> None:
    """The edge's own NATS user and password reach its config (template only, no install)."""
    out = tmp_path / "edge.yaml"
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"edge_id": "edge-on-1", "edge_nats_url": "nats://127.0.0.1:4222", "edge_nats_password": "s3cret",
                 "edge_residency_key_hex": "0" * 64},
        "tasks": [
            {"name": "Defaults", "ansible.builtin.include_vars": str(ANSIBLE / "roles/edge/defaults/main.yml")},
            {"name": "Ontario", "ansible.builtin.include_vars": str(ANSIBLE / "inventories/example/group_vars/ontario.yml")},
            {"name": "Render", "ansible.builtin.template": {"src": str(ANSIBLE / "roles/edge/templates/edge.yaml.j2"),
                                                             "dest": str(out), "mode": "0600"}}]}]))
    proc = subprocess.run(check=False, args=[_tool("ansible-playbook"), "-i", "localhost,", "-c", "local", str(play),
                           "-e", f"ansible_python_interpreter={sys.executable}",
                           "-e", "edge_id=edge-on-1", "-e", "edge_nats_password=s3cret",
                           "-e", "edge_nats_url=nats://127.0.0.1:4222",
                           "-e", json.dumps({"edge_media": {"tables": [{"table_id": "roulette-1", "srt_port": 9000},
                                                                       {"table_id": "open-1", "srt_port": 9001}],
                                                            "viewer_capacity": 700},
                                             "edge_srt_passphrases": {"roulette-1": "vaulted-studio-secret"},
                                             "edge_srt_bind": "10.0.5.1"})],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ANSIBLE_HOME": str(tmp_path / "ah"),
                               "ANSIBLE_LOCAL_TEMP": str(tmp_path / "at")})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    cfg = yaml.safe_load(out.read_text())
    assert cfg["nats"] == {"url": "nats://127.0.0.1:4222", "user": "edge-edge-on-1", "password": "s3cret"}
    assert cfg["jurisdiction"] == "CA-ON" and cfg["currency"] == "CAD"
    assert "bet.placed" in cfg["residency"]["allow_kinds"]
    # Media: one fan-out worker per core (no facts gathered here: 1), the operator's capacity kept.
    assert cfg["media"]["workers"] == 1 and cfg["media"]["viewer_capacity"] == 700
    # The studio link's secret is named by file, never put in the config itself.
    key = ANSIBLE_DEFAULT_CONFIG_DIR + "/srt-roulette-1.key"
    assert cfg["media"]["tables"] == [{"table_id": "roulette-1", "srt_port": 9000, "srt_passphrase_file": key},
                                      {"table_id": "open-1", "srt_port": 9001}]
    assert cfg["media"]["srt_bind"] == "10.0.5.1"
    assert "vaulted-studio-secret" not in out.read_text()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_installed_edge_answers_healthy_and_replicates(provisioned, tmp_path: Path) -> None:
    prefix: Path = provisioned["prefix"]
    venv = prefix / "opt" / "edge-agent" / "venv"
    etc = prefix / "etc" / "edge-agent"
    # Litestream first, as the units order it (it waits for the journal to appear), then the edge.
    litestream = subprocess.Popen([str(venv / "bin" / "litestream"), "replicate", "-config",
                                   str(etc / "litestream.yml")], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
    edge = subprocess.Popen([str(venv / "bin" / "edge-agent"), "serve", "--config", str(etc / "edge.yaml")],
                            cwd=prefix / "var" / "lib" / "edge-agent", stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{provisioned['port']}/healthz"
        body = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert edge.poll() is None, edge.stdout.read()[-4000:]
            try:
                r = httpx.get(url, timeout=2)
                if r.status_code == 200:
                    body = r.json()
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        assert body is not None, "edge never answered healthy"
        assert body["status"] == "ok" and body["edge_id"] == "edge-test-1" and body["jurisdiction"] == "MT"
        # ... and it syncs to NATS with its own credentials
        deadline = time.monotonic() + 30
        def synced(b: dict) -> bool:
            detail = b["checks"].get("sync", {}).get("detail", {})
            return bool(detail.get("connected")) and detail.get("lag") == 0 and b["checks"]["journal"]["head_seq"] > 0

        while not synced(body):
            assert time.monotonic() < deadline, body
            time.sleep(0.3)
            body = httpx.get(url, timeout=2).json()
        metrics = httpx.get(f"http://127.0.0.1:{provisioned['port']}/metrics", timeout=5).text
        # the installed edge exports every casino_* metric the alert rules use (docs/OPERATIONS.md)
        from tests.ops.test_alerts import REQUIRED_METRICS

        exported = set(re.findall(r"^# TYPE (\S+) ", metrics, re.MULTILINE))
        exported |= {n[:-6] for n in exported if n.endswith("_total")} | {n + "_total" for n in exported}
        # (plus the glass-to-glass histogram players' browsers feed, exported even with no video)
        wanted = {m for m in REQUIRED_METRICS if m.startswith("casino_")} | {"media_glass_to_glass_seconds"}
        assert wanted <= exported, wanted - exported

        # Litestream as the rendered unit runs it: the journal reaches the file replica.
        replica = prefix / "var" / "lib" / "edge-agent" / "replica"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(p.is_file() for p in replica.rglob("*")):
            assert litestream.poll() is None, litestream.stdout.read()[-3000:]
            time.sleep(0.5)
        assert any(p.is_file() for p in replica.rglob("*")), "no replica written"
        # Litestream as its own unit serves its own metrics on the rendered `addr:`: what the
        # replication alerts read (litestream_txid, litestream_sync_error_count) for this journal.
        ls_metrics = httpx.get(f"http://{provisioned['litestream_addr']}/metrics", timeout=5).text
        db = prefix / "var/lib/edge-agent/journal.db"
        for name in ("litestream_txid", "litestream_sync_error_count"):
            assert re.search(rf'^{name}{{db="{re.escape(str(db))}"}} \d', ls_metrics, re.MULTILINE), name
        _stop(litestream)
        restored = tmp_path / "restored.db"
        r = subprocess.run(check=False, args=[str(venv / "bin" / "litestream"), "restore", "-o", str(restored),
                            f"file://{replica}"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        import sqlite3

        with sqlite3.connect(restored) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "kv" in tables
    finally:
        _stop(litestream)
        _stop(edge)
    assert edge.returncode == 0, edge.stdout.read()[-3000:] if edge.stdout else ""


def test_control_plane_role_migrates_once(provisioned) -> None:
    """The control_plane role on localhost: config with the database URL, migrations applied
    (SQLite here), and a second run changes nothing. It reuses the edge's virtualenv (same
    package) so no second install is needed."""
    tmp: Path = provisioned["tmp"]
    prefix = tmp / "cp-root"
    prefix.mkdir()
    db = prefix / "cp.db"
    inv = tmp / "cp-inventory"
    shutil.copytree(ANSIBLE / "inventories" / "example" / "group_vars", inv / "group_vars")
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"control_plane": {"hosts": {
        "cp-test-1": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}))
    extra = tmp / "cp-extra.yml"
    extra.write_text(yaml.safe_dump({
        "control_plane_become": False, "control_plane_prefix": str(prefix),
        "control_plane_service_manager": "none", "control_plane_manage_apt": False,
        "control_plane_manage_user": False,
        "control_plane_service_user": "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody"),
        "control_plane_venv": str(provisioned["prefix"] / "opt" / "edge-agent" / "venv"),
        "control_plane_package_source": str(provisioned["source"]),
        "control_plane_python": sys.executable,
        "control_plane_database_url": f"sqlite:///{db}",
        "control_plane_nats_url": "",
    }))
    first, recap1 = _run_playbook(inv / "hosts.yml", extra, provisioned["env"], "control-plane.yml", "cp-test-1")
    assert recap1["changed"] > 0 and "Run control-plane migrations" in first
    import sqlite3

    with sqlite3.connect(db) as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert len(version) == 1
    cfg = yaml.safe_load((prefix / "etc" / "control-plane" / "control-plane.yaml").read_text())
    assert cfg["database_url"] == f"sqlite:///{db}" and cfg["migrate_on_start"] is False
    from control_plane.config import load_config

    load_config(prefix / "etc" / "control-plane" / "control-plane.yaml")  # the service accepts it
    second, recap2 = _run_playbook(inv / "hosts.yml", extra, provisioned["env"], "control-plane.yml", "cp-test-1")
    assert recap2["changed"] == 0, second[-4000:]


def test_ansible_lint_production_profile() -> None:
    proc = subprocess.run(check=False, args=[_tool("ansible-lint"), "--profile", "production", "--offline", "--nocolor",
                           "site.yml", "edge.yml", "control-plane.yml", "inventories", "roles"],
                          cwd=ANSIBLE, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg")})
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    assert "Passed" in proc.stdout + proc.stderr and "production" in proc.stdout + proc.stderr


def test_site_playbook_syntax() -> None:
    proc = subprocess.run(check=False, args=[_tool("ansible-playbook"), "--syntax-check", "site.yml"], cwd=ANSIBLE,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    inv = subprocess.run(check=False, args=[_tool("ansible-inventory"), "--list"], cwd=ANSIBLE, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg")})
    assert inv.returncode == 0, inv.stderr
    groups = json.loads(inv.stdout)
    assert set(groups["edges"]["children"]) >= {"malta", "ontario"}
    assert groups["_meta"]["hostvars"]["edge-on-1"]["edge_currency"] == "CAD"
    assert groups["_meta"]["hostvars"]["edge-mt-1"]["edge_jurisdiction"] == "MT"
