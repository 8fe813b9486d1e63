"""deploy/ is valid (compose spec, Kubernetes schemas, nats-server's own check) and complete."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from devtools.embedded import EmbeddedNats
from devtools.stack import SERVICES
from shared.settings import nats_servers

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "kubernetes"
K8S_VERSION = "1.33"  # schemas shipped inside kubernetes-validate: no network at test time


def k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    """(file name, document) of every Kubernetes manifest."""
    return [(path.name, doc) for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def workload(name: str) -> dict[str, Any]:
    """The Deployment or StatefulSet called name."""
    [found] = [d for _, d in k8s_docs()
               if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["name"] == name]
    return found


def nats_config_is_valid(text: str, **env: str) -> str:
    """Run `nats-server -t` on a config; return its output (fails the test if invalid)."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as conf:
        conf.write(text)
        conf.flush()
        done = subprocess.run([str(EmbeddedNats.binary()), "-t", "-c", conf.name], capture_output=True,
                              text=True, env=os.environ | env, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


# --- compose -------------------------------------------------------------------------------

def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_compose_file_matches_the_compose_spec() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(DEPLOY / "compose.yaml")], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_runs_every_service_with_a_readiness_healthcheck() -> None:
    services = compose()["services"]
    for name in SERVICES:
        svc = services[name]
        assert svc["command"] == ["python", "-m", name]
        assert any("/readyz" in part for part in svc["healthcheck"]["test"]), name
        env = svc["environment"]
        assert len(nats_servers(env["PATCHBAY_NATS_URL"])) == 3
        assert env["PATCHBAY_STREAM_REPLICAS"] == "3" and env["PATCHBAY_OPS_HOST"] == "0.0.0.0"
        assert {"postgres", "nats-1", "nats-2", "nats-3"} <= set(svc["depends_on"]), name
    assert "PATCHBAY_ADMIN_TOKEN" in services["gateway"]["environment"]
    assert services["notifier"]["volumes"], "the notifier's journal needs a volume"
    assert {"postgres", "mailpit"} <= set(services)


def test_compose_nats_is_a_three_node_cluster() -> None:
    services = compose()["services"]
    nodes = [services[f"nats-{i}"] for i in (1, 2, 3)]
    stores = {v for node in nodes for v in node["volumes"] if v.endswith(":/data")}
    assert len(stores) == 3, "each node needs its own store"
    text = (DEPLOY / "nats" / "nats.conf").read_text()
    assert "jetstream" in text and len(re.findall(r"nats-route://nats-\d:6222", text)) == 3
    assert "is valid" in nats_config_is_valid(text, NATS_SERVER_NAME="nats-1")


# --- Kubernetes ----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "doc"), k8s_docs(),
                         ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in k8s_docs()])
def test_manifest_matches_the_kubernetes_schema(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_misspelled_field_is_caught() -> None:
    """The validation above can fail: strict schemas reject unknown fields."""
    doc = workload("customer")
    broken = {**doc, "spec": {**doc["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_every_service_runs_with_probes_on_its_ops_port() -> None:
    for name in SERVICES:
        [container] = workload(name)["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", name]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["ops"] == 9100
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
        assert {"configMapRef": {"name": "patchbay-config"}} in container["envFrom"]
        secrets = {e["name"] for e in container["env"] if "valueFrom" in e}
        assert {"PATCHBAY_SECRET_KEY", "PATCHBAY_DATABASE_URL"} <= secrets, name
    [config] = [d for _, d in k8s_docs() if d["metadata"]["name"] == "patchbay-config"]
    assert len(nats_servers(config["data"]["PATCHBAY_NATS_URL"])) == 3
    assert config["data"]["PATCHBAY_STREAM_REPLICAS"] == "3"
    assert config["data"]["PATCHBAY_OPS_PORT"] == "9100" and config["data"]["PATCHBAY_OPS_HOST"] == "0.0.0.0"


def test_nats_is_a_stateful_three_node_jetstream_cluster() -> None:
    nats = workload("nats")
    assert nats["kind"] == "StatefulSet" and nats["spec"]["replicas"] == 3
    assert nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    [config] = [d for _, d in k8s_docs() if d["metadata"]["name"] == "nats-config"]
    text = config["data"]["nats.conf"]
    assert len(re.findall(r"nats-route://nats-\d\.nats-headless:6222", text)) == 3
    assert "is valid" in nats_config_is_valid(text, POD_NAME="nats-0")


def test_secret_template_and_kustomization() -> None:
    [secret] = [d for n, d in k8s_docs() if n == "secret.template.yaml"]
    assert set(secret["stringData"]) == {"PATCHBAY_SECRET_KEY", "PATCHBAY_ADMIN_TOKEN",
                                         "POSTGRES_PASSWORD", "PATCHBAY_DATABASE_URL"}
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.template.yaml"}
    assert set(kustomization["resources"]) == files


# --- the image -----------------------------------------------------------------------------

def test_dockerfile_builds_one_image_from_the_lock() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    makefile = (DEPLOY.parent / "Makefile").read_text()
    uv_version = re.search(r"UV_VERSION := (\S+)", makefile)
    assert uv_version and f"uv=={uv_version.group(1)}" in text, "the image's uv is the Makefile's"
    assert "uv sync --locked --no-dev" in text
    assert 'CMD ["python", "-m", "gateway"]' in text and "EXPOSE 8000 9100" in text
    for name in ["shared", "devtools", "cli", *(f"services/{s}" for s in SERVICES)]:
        assert f"COPY {name}/pyproject.toml" in text, name


def test_replicas_that_share_partitions_are_numbered_and_counted_right() -> None:
    from shared.partitions import PARTITIONS

    for name in ("reporting", "notifier"):
        spec = workload(name)
        assert spec["kind"] == "StatefulSet", name  # a stable ordinal is the replica index
        [container] = spec["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert int(env["PATCHBAY_REPLICA_COUNT"]["value"]) == spec["spec"]["replicas"] <= PARTITIONS, name
        index = env["PATCHBAY_REPLICA_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
        assert index == "metadata.labels['apps.kubernetes.io/pod-index']", name
    reporting = [s["environment"] for s in compose()["services"].values()
                 if s.get("command") == ["python", "-m", "reporting"]]
    counts = {e["PATCHBAY_REPLICA_COUNT"] for e in reporting}
    assert counts == {str(len(reporting))} and len(reporting) == 2
    assert sorted(e["PATCHBAY_REPLICA_INDEX"] for e in reporting) == [str(i) for i in range(len(reporting))]
