"""deploy/ is valid (compose spec, Kubernetes schemas, nats-server's own check) and complete."""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from devtools.deploy_secrets import make as make_deploy_secrets
from devtools.embedded import EmbeddedNats
from devtools.stack import SERVICES
from shared.bus_credentials import public_key
from shared.bus_identities import IDENTITIES
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


@functools.cache
def nats_secrets() -> Path:
    """What `python -m devtools.deploy_secrets` makes (seeds, auth block, CA and certificates)."""
    base = Path(tempfile.mkdtemp(prefix="patchbay-deploy-secrets-"))
    make_deploy_secrets(base)
    return base


def nats_config_is_valid(text: str, **env: str) -> str:
    """Run `nats-server -t` on a config laid out as deployed (/etc/nats/{auth,tls}); return its output."""
    with tempfile.TemporaryDirectory() as tmp:
        etc = Path(tmp)
        (etc / "auth").mkdir()
        (etc / "tls").mkdir()
        shutil.copy(nats_secrets() / "nats" / "auth.conf", etc / "auth" / "auth.conf")
        for pem in ("ca.pem", "server.pem", "server-key.pem"):
            shutil.copy(nats_secrets() / "nats" / pem, etc / "tls" / pem)
        conf = etc / "nats.conf"
        conf.write_text(text.replace("/etc/nats/", f"{etc}/"))
        done = subprocess.run([str(EmbeddedNats.binary()), "-t", "-c", str(conf)], capture_output=True,
                              text=True, env=os.environ | env, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def assert_authenticated_and_encrypted(text: str) -> None:
    """Clients: nkeys from the table's auth block, TLS; routes: mutual TLS."""
    assert 'include "auth/auth.conf"' in text
    client_tls, cluster = text.split("cluster {", 1)
    assert "tls {" in client_tls and "/etc/nats/tls/server.pem" in client_tls
    assert "tls {" in cluster and "verify: true" in cluster.split("routes: [")[0]
    assert "no_auth_user" not in text


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
    assert_authenticated_and_encrypted(text)
    assert "is valid" in nats_config_is_valid(text, NATS_SERVER_NAME="nats-1")


def test_compose_gives_each_service_its_own_seed_and_provisions_first() -> None:
    spec = compose()
    services = spec["services"]
    for name in [*SERVICES, "provision"]:
        svc = services[name]
        identity = "provisioner" if name == "provision" else name
        assert {"source": f"nats-seed-{identity}", "target": "nats.nk"} in svc["secrets"], name
        assert [s for s in svc["secrets"] if s["source"].startswith("nats-seed-")] == [
            {"source": f"nats-seed-{identity}", "target": "nats.nk"}], f"{name} sees another seed"
        env = svc["environment"]
        assert env["PATCHBAY_NATS_SEED_FILE"] == "/run/secrets/nats.nk"
        assert env["PATCHBAY_NATS_COMMAND_SIGNERS"].startswith("${PATCHBAY_NATS_COMMAND_SIGNERS:?")
        assert all(u.startswith("tls://") for u in nats_servers(env["PATCHBAY_NATS_URL"]))
        if name != "provision":
            assert svc["depends_on"]["provision"] == {"condition": "service_completed_successfully"}
    assert services["provision"]["command"] == ["python", "-m", "shared.bus", "provision"]
    for seed in spec["secrets"].values():
        assert seed["file"].startswith("./secrets/"), "secrets come from the git-ignored deploy/secrets"
    assert "deploy/secrets/" in (DEPLOY.parent / ".gitignore").read_text()


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
    assert_authenticated_and_encrypted(text)
    assert "is valid" in nats_config_is_valid(text, POD_NAME="nats-0")
    [container] = nats["spec"]["template"]["spec"]["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in nats["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mounts["/etc/nats/auth"]]["secret"]["secretName"] == "nats-auth"
    assert volumes[mounts["/etc/nats/tls"]]["secret"]["secretName"] == "nats-tls"


def test_each_workload_mounts_its_own_seed_only_and_a_job_provisions() -> None:
    [config] = [d for _, d in k8s_docs() if d["metadata"]["name"] == "patchbay-config"]
    assert all(u.startswith("tls://") for u in nats_servers(config["data"]["PATCHBAY_NATS_URL"]))
    assert config["data"]["PATCHBAY_NATS_SEED_FILE"] == "/etc/patchbay/nats/nats.nk"
    [job] = [d for _, d in k8s_docs() if d["kind"] == "Job"]
    pods = {name: workload(name)["spec"]["template"]["spec"] for name in SERVICES} | {
        "provisioner": job["spec"]["template"]["spec"]}
    for identity, pod in pods.items():
        seeds = [v["secret"]["secretName"] for v in pod["volumes"]
                 if v.get("secret", {}).get("secretName", "").startswith("nats-seed-")]
        assert seeds == [f"nats-seed-{identity}"], identity
        [container] = pod["containers"]
        assert {"name": "nats-seed", "mountPath": "/etc/patchbay/nats", "readOnly": True} in container["volumeMounts"]
        if identity != "provisioner":  # services check who vouches for a command's actor
            assert {"configMapRef": {"name": "nats-signers"}} in container["envFrom"], identity
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["python", "-m", "shared.bus", "provision"]


def test_deploy_secrets_make_seeds_the_auth_block_and_certificates_for_every_name() -> None:
    from cryptography import x509

    base = nats_secrets()
    block = (base / "nats" / "auth.conf").read_text()
    for name in IDENTITIES:
        seed = (base / "credentials" / f"{name}.nk").read_text().strip()
        assert seed not in block and public_key(seed) in block
    cert = x509.load_pem_x509_certificate((base / "nats" / "server.pem").read_bytes())
    names = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                .get_values_for_type(x509.DNSName))
    assert {"nats-1", "nats-2", "nats-3", "nats-0.nats-headless", "nats-2.nats-headless"} <= names
    assert (base / "nats" / "ca-key.pem").stat().st_mode & 0o777 == 0o600


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


# --- PostgreSQL least privilege ------------------------------------------------------------

def test_each_service_connects_as_its_own_database_role() -> None:
    from devtools.db_roles import SERVICE_SCHEMAS

    script = (DEPLOY / "postgres" / "roles.sh").read_text()
    roles = re.search(r"for role in ([a-z ]+); do", script)
    assert roles and roles.group(1).split() == list(SERVICE_SCHEMAS)
    for name, svc in compose()["services"].items():
        command = svc.get("command", [])
        if command[:2] == ["python", "-m"] and command[2] in SERVICE_SCHEMAS:
            url = svc["environment"]["PATCHBAY_DATABASE_URL"]
            assert url.startswith(f"postgresql://{command[2]}:${{{command[2].upper()}_DB_PASSWORD:?"), name
    postgres = compose()["services"]["postgres"]
    assert "./postgres/roles.sh:/docker-entrypoint-initdb.d/10-roles.sh:ro" in postgres["volumes"]
    [init] = [d for _, d in k8s_docs() if d["metadata"]["name"] == "postgres-init"]
    assert init["data"]["10-roles.sh"] == script
    for name in SERVICES:
        [container] = workload(name)["spec"]["template"]["spec"]["containers"]
        [db] = [e for e in container["env"] if e["name"] == "PATCHBAY_DATABASE_URL"]
        assert db["valueFrom"]["secretKeyRef"] == {"name": f"patchbay-db-{name}", "key": "PATCHBAY_DATABASE_URL"}


@pytest.mark.servers
async def test_the_roles_script_gives_each_service_its_own_schema_only(make_database: Any, tmp_path: Path) -> None:
    from urllib.parse import urlsplit

    import asyncpg
    from devtools.embedded import EmbeddedPostgres

    url = await make_database()
    parts = urlsplit(url)
    passwords = tmp_path / "passwords"
    passwords.mkdir()
    for role in ("customer", "verification", "notifier", "reporting", "alerts", "gateway"):
        (passwords / role).write_text(f"pw-{role}\n")
    env = os.environ | {"PATH": f"{EmbeddedPostgres.bin_dir()}:{os.environ['PATH']}",
                        "PGHOST": parts.hostname or "", "PGPORT": str(parts.port), "POSTGRES_USER": "postgres",
                        "POSTGRES_DB": parts.path.lstrip("/"), "PATCHBAY_ROLE_PASSWORDS": str(passwords)}
    for _ in range(2):  # idempotent: run again by hand after a change
        done = await asyncio.to_thread(subprocess.run, ["sh", str(DEPLOY / "postgres" / "roles.sh")], env=env,
                                       capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    as_customer = url.replace("postgres@", "customer:pw-customer@", 1)
    conn = await asyncpg.connect(as_customer)
    try:
        await conn.execute("CREATE TABLE customer.things (id int)")
        for forbidden in ("CREATE TABLE gateway.stolen (id int)", "CREATE TABLE public.stolen (id int)",
                          "CREATE SCHEMA stolen"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(forbidden)
    finally:
        await conn.close()
