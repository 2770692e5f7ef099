"""Grafana dashboards: generated from code (grafana-foundation-sdk), the checked-in JSON is what
the code generates, and every metric a panel queries is exported by the running services."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.grafana.generate import OUT, render
from tests.ops.promql import SYNTHETIC, references
from tests.ops.scrape import UNSAMPLED_OK, Scrape

ROOT = Path(__file__).resolve().parents[2]


def queries() -> dict[str, list[str]]:
    """{panel title: PromQL expressions} of every checked-in dashboard."""
    out: dict[str, list[str]] = {}
    for path in sorted(OUT.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            out[f"{path.name}: {panel['title']}"] = [t["expr"] for t in panel["targets"]]
    return out


def test_checked_in_json_is_what_the_code_generates() -> None:
    rendered = render()
    assert set(rendered) == {p.name for p in OUT.glob("*.json")}
    for name, text in rendered.items():
        assert (OUT / name).read_text() == text, f"{name} is stale: run `python -m ops.grafana.generate`"


def test_dashboards_cover_what_operators_watch() -> None:
    titles = " | ".join(queries())
    for wanted in ("Bets per second", "Bet acknowledgement latency", "Rounds", "Voided rounds", "Viewers per rung",
                   "Glass-to-glass", "Late frames", "Sync lag", "Litestream", "entries applied", "Lag per edge",
                   "Commands", "Payouts", "AML flags"):
        assert wanted in titles, wanted


@pytest.mark.timeout(400)
def test_every_metric_a_panel_queries_is_exported(scraped: Scrape) -> None:
    problems = []
    for panel, exprs in queries().items():
        for expr in exprs:
            for series, labels in references(expr).items():
                if series in SYNTHETIC:
                    continue
                # Every panel's series is shown with samples (the scrape makes bets, rounds,
                # deposits, an AML flag and a payout happen), and with the labels the panel uses.
                if series not in scraped.samples:
                    if not (series in UNSAMPLED_OK and series in scraped.declared and not labels - {"rung", "table"}):
                        problems.append(f"{panel}: {series} is not exported with samples")
                elif labels - scraped.samples[series]:
                    problems.append(f"{panel}: {series} lacks {sorted(labels - scraped.samples[series])}")
    assert not problems, "\n".join(problems)


def test_ansible_ships_the_dashboards() -> None:
    tasks = (ROOT / "ansible/roles/monitoring/tasks/main.yml").read_text()
    assert "ops/grafana/dashboards" in (ROOT / "ansible/roles/monitoring/defaults/main.yml").read_text()
    assert "provisioning" in tasks and "dashboards" in tasks


def test_monitoring_role_installs_dashboards_and_provisioning(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import yaml

    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"monitoring": {"hosts": {"mon-test": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}))
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    extra = {"monitoring_become": False, "monitoring_prefix": str(tmp_path / "root"), "monitoring_owner": user,
             "monitoring_group": "root" if os.geteuid() == 0 else user}
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible/ansible.cfg"), "ANSIBLE_HOME": str(tmp_path / "ah"),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "at"), "ANSIBLE_NOCOLOR": "1"}
    playbook = Path(sys.executable).parent / "ansible-playbook"
    proc = subprocess.run([str(playbook), "-i", str(inv), "-e", json.dumps(extra), str(ROOT / "ansible/monitoring.yml")],
                          cwd=ROOT / "ansible", capture_output=True, text=True, env=env, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    dash = tmp_path / "root/var/lib/grafana/dashboards/livecasino"
    assert {p.name for p in dash.glob("*.json")} == {p.name for p in OUT.glob("*.json")}
    prov = yaml.safe_load((tmp_path / "root/etc/grafana/provisioning/dashboards/livecasino.yml").read_text())
    assert prov["providers"][0]["options"]["path"] == str(dash) and prov["providers"][0]["type"] == "file"
    assert (tmp_path / "root/etc/prometheus/rules/livecasino-alerts.yml").read_text() == \
        (ROOT / "ops/prometheus/alerts.yml").read_text()
