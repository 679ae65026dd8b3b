"""deploy/k8s: every manifest parses; probes, grace periods, the single beat, autoscaling."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from celeryconfig import QUEUE_NAMES
from tests.unit.deploy.conftest import (
    K8S,
    PROCESS_VARIABLES,
    settings_variables,
    soft_shutdown_default_s,
)

Doc = dict[str, Any]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    matches = [d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def container(doc: Doc, name: str) -> Doc:
    return next(c for c in pod(doc)["containers"] if c["name"] == name)


def env_of(c: Doc) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in c.get("env", [])}


def deployments(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d.get("kind") == "Deployment"]


def test_given_the_manifests_when_parsed_then_each_document_has_kind_and_name(
    k8s_documents: list[Doc],
) -> None:
    assert k8s_documents
    for doc in k8s_documents:
        assert doc.get("apiVersion") and doc.get("kind"), doc["__file__"]
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"], doc["__file__"]


def test_given_every_deployment_when_terminated_then_grace_outlasts_the_soft_shutdown(
    k8s_documents: list[Doc],
) -> None:
    names = {d["metadata"]["name"] for d in deployments(k8s_documents)}
    assert names == {
        "hyperwatch-ingester", "hyperwatch-worker", "hyperwatch-beat", "hyperwatch-flower",
        "hyperwatch-api",
    }  # fmt: skip
    config = find(k8s_documents, "ConfigMap", "hyperwatch-config")["data"]
    soft = float(config["WORKER_SOFT_SHUTDOWN_TIMEOUT_S"])
    assert soft == soft_shutdown_default_s()
    for doc in deployments(k8s_documents):
        grace = pod(doc)["terminationGracePeriodSeconds"]
        assert grace > soft, doc["metadata"]["name"]
        assert grace == 60, doc["metadata"]["name"]


@pytest.mark.parametrize(
    ("name", "container_name"),
    [
        ("hyperwatch-ingester", "ingester"),
        ("hyperwatch-worker", "worker"),
        ("hyperwatch-flower", "flower"),
        ("hyperwatch-api", "api"),
    ],
)
def test_given_a_long_running_deployment_when_probed_then_it_has_liveness_and_readiness(
    k8s_documents: list[Doc], name: str, container_name: str
) -> None:
    c = container(find(k8s_documents, "Deployment", name), container_name)

    assert "livenessProbe" in c
    assert "readinessProbe" in c


def test_given_the_ingester_when_probed_then_liveness_is_healthz_and_readiness_readyz(
    k8s_documents: list[Doc],
) -> None:
    c = container(find(k8s_documents, "Deployment", "hyperwatch-ingester"), "ingester")
    config = find(k8s_documents, "ConfigMap", "hyperwatch-config")["data"]

    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports[c["livenessProbe"]["httpGet"]["port"]] == int(config["INGESTER_HEALTH_PORT"])
    assert config["INGESTER_HEALTH_HOST"] == "0.0.0.0"


def test_given_the_ingester_when_deployed_then_a_pair_rolls_surge_first_on_different_nodes(
    k8s_documents: list[Doc],
) -> None:
    ingester = find(k8s_documents, "Deployment", "hyperwatch-ingester")
    labels = ingester["spec"]["template"]["metadata"]["labels"]

    # A leader and a standby of one feed (one ConfigMap, so one INGESTER_NAME).
    assert ingester["spec"]["replicas"] == 2
    assert "INGESTER_NAME" not in env_of(container(ingester, "ingester"))
    # A new pod is ready before an old one gets SIGTERM.
    strategy = ingester["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    # Preferably on different nodes, never unschedulable for want of a second node.
    anti = pod(ingester)["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti
    (preferred,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    term = preferred["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= labels.items()
    assert 1 <= preferred["weight"] <= 100


def test_given_a_node_drain_when_evicting_ingesters_then_the_budget_keeps_one(
    k8s_documents: list[Doc],
) -> None:
    pdb = find(k8s_documents, "PodDisruptionBudget", "hyperwatch-ingester")
    ingester = find(k8s_documents, "Deployment", "hyperwatch-ingester")

    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["__file__"] == "ingester-pdb.yaml"
    assert set(pdb["spec"]) == {"minAvailable", "selector"}
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["minAvailable"] < ingester["spec"]["replicas"]
    selector = pdb["spec"]["selector"]["matchLabels"]
    targets = [
        d
        for d in deployments(k8s_documents)
        if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert targets == [ingester]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "ingester-pdb.yaml" in kustomization["resources"]


def test_given_the_worker_when_deployed_then_sigterm_is_remapped_and_liveness_reads_the_heartbeat(
    k8s_documents: list[Doc],
) -> None:
    worker = find(k8s_documents, "Deployment", "hyperwatch-worker")
    c = container(worker, "worker")

    assert env_of(c)["REMAP_SIGTERM"] == "SIGQUIT"
    assert env_of(c)["WORKER_QUEUES"].split(",") == list(QUEUE_NAMES)
    assert c["args"] == ["worker"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["exec"]["command"][:3] == ["hyperwatch", "health", "worker"], probe
    # The heartbeat file lives in DATA_DIR, which must be writable under a read-only root.
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert find(k8s_documents, "ConfigMap", "hyperwatch-config")["data"]["DATA_DIR"] in mounts


def test_given_beat_when_deployed_then_exactly_one_runs_even_during_a_rollout(
    k8s_documents: list[Doc],
) -> None:
    beat = find(k8s_documents, "Deployment", "hyperwatch-beat")

    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    probe = container(beat, "beat")["livenessProbe"]
    assert probe["exec"]["command"] == ["hyperwatch", "health", "beat"]


def test_given_config_and_secrets_when_read_then_every_variable_is_a_known_setting(
    k8s_documents: list[Doc],
) -> None:
    known = settings_variables() | PROCESS_VARIABLES
    config = find(k8s_documents, "ConfigMap", "hyperwatch-config")["data"]
    assert not set(config) - known, sorted(set(config) - known)
    assert all(isinstance(v, str) for v in config.values()), "ConfigMap values must be strings"
    secrets = find(k8s_documents, "Secret", "hyperwatch-secrets")["stringData"]
    # REDIS_PASSWORD is KEDA's, not hyperwatch's (which reads it from REDIS_URL).
    assert not set(secrets) - known - {"REDIS_PASSWORD"}
    assert {"DATABASE_URL", "REDIS_URL"} <= set(secrets)
    for doc in deployments(k8s_documents):
        for c in pod(doc)["containers"]:
            assert not set(env_of(c)) - known, (doc["metadata"]["name"], env_of(c))


def test_given_flowers_password_when_deployed_then_only_flower_gets_it(
    k8s_documents: list[Doc],
) -> None:
    flower = container(find(k8s_documents, "Deployment", "hyperwatch-flower"), "flower")
    ref = next(e for e in flower["env"] if e["name"] == "FLOWER_BASIC_AUTH")
    assert ref["valueFrom"]["secretKeyRef"]["name"] == "hyperwatch-flower"
    assert find(k8s_documents, "Secret", "hyperwatch-flower")
    for doc in deployments(k8s_documents):
        if doc["metadata"]["name"] == "hyperwatch-flower":
            continue
        for c in pod(doc)["containers"]:
            assert "FLOWER_BASIC_AUTH" not in env_of(c)
            refs = [s["secretRef"]["name"] for s in c.get("envFrom", []) if "secretRef" in s]
            assert "hyperwatch-flower" not in refs


def test_given_every_pod_when_scheduled_then_it_runs_non_root_with_a_read_only_root(
    k8s_documents: list[Doc],
) -> None:
    for doc in [*deployments(k8s_documents), find(k8s_documents, "Job", "hyperwatch-migrate")]:
        spec = pod(doc)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        for c in spec.get("initContainers", []) + spec["containers"]:
            assert c["image"] == "hyperwatch"
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert c["securityContext"]["allowPrivilegeEscalation"] is False


def test_given_the_migrate_job_when_run_then_it_upgrades_and_the_worker_and_beat_wait_for_it(
    k8s_documents: list[Doc],
) -> None:
    job = find(k8s_documents, "Job", "hyperwatch-migrate")
    assert container(job, "migrate")["args"] == ["migrate"]
    for name in ("hyperwatch-worker", "hyperwatch-beat"):
        init = pod(find(k8s_documents, "Deployment", name))["initContainers"][0]
        assert "hyperwatch db current" in init["command"][-1], name
        assert "up to date" in init["command"][-1], name


def test_given_services_when_resolved_then_they_select_pods_and_named_ports_that_exist(
    k8s_documents: list[Doc],
) -> None:
    services = [d for d in k8s_documents if d.get("kind") == "Service"]
    assert {s["metadata"]["name"] for s in services} == {
        "hyperwatch-ingester", "hyperwatch-worker-metrics", "hyperwatch-flower", "hyperwatch-api",
    }  # fmt: skip
    for svc in services:
        selector = svc["spec"]["selector"]
        targets = [
            d
            for d in deployments(k8s_documents)
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(targets) == 1, svc["metadata"]["name"]
        port_names = {p["name"] for c in pod(targets[0])["containers"] for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in port_names, svc["metadata"]["name"]


def test_given_deployments_when_selected_then_selectors_match_their_pod_labels(
    k8s_documents: list[Doc],
) -> None:
    for doc in deployments(k8s_documents):
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_given_queue_depth_when_autoscaling_then_keda_scales_the_worker_on_the_queue_lists(
    k8s_documents: list[Doc],
) -> None:
    scaled = find(k8s_documents, "ScaledObject", "hyperwatch-worker")

    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "hyperwatch-worker"
    assert scaled["spec"]["minReplicaCount"] >= 1
    assert scaled["spec"]["maxReplicaCount"] > scaled["spec"]["minReplicaCount"]
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"redis"}
    assert {t["metadata"]["listName"] for t in triggers} <= set(QUEUE_NAMES)
    assert "ingest" in {t["metadata"]["listName"] for t in triggers}
    for t in triggers:
        assert int(t["metadata"]["listLength"]) > 0
        auth = t["authenticationRef"]["name"]
        assert find(k8s_documents, "TriggerAuthentication", auth)


def test_given_the_kustomization_when_applied_then_it_lists_every_plain_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")}

    resources = set(kustomization["resources"])
    assert resources <= files
    # Credentials are never applied from the repository; KEDA's CRDs may be absent.
    assert resources == files - {
        "kustomization.yaml", "secret.example.yaml", "worker-autoscaling.yaml",
    }  # fmt: skip
    assert kustomization["images"][0]["name"] == "hyperwatch"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_given_kubectl_when_rendering_the_kustomization_then_it_builds() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    rendered = list(yaml.safe_load_all(result.stdout))
    assert {d["kind"] for d in rendered} >= {"Deployment", "ConfigMap", "Job", "Service"}
    assert all(
        d["metadata"].get("namespace") == "hyperwatch" for d in rendered if d["kind"] != "Namespace"
    )


def test_given_the_api_when_probed_then_liveness_is_healthz_and_readiness_readyz(
    k8s_documents: list[Doc],
) -> None:
    api = find(k8s_documents, "Deployment", "hyperwatch-api")
    [container] = pod(api)["containers"]

    assert container["args"] == ["api"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
