"""ops/k8s: every manifest validates against the Kubernetes schemas, and the deployment
keeps the promises the platform needs (graceful worker shutdown, one beat, probes...).

The validator is `kubernetes-validate` (PyPI), which ships the schemas in the package and
needs no network at run time.
"""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import pytest

from shared.jobtypes import QUEUES, REGISTRY
from tests.support import ROOT

K8S = ROOT / "ops" / "k8s"
KUBERNETES_VERSION = "1.30.0"
SECRET_NAMES = {"SECRET_KEY", "JWT_SECRET", "ERASURE_JOURNAL_KEY", "AUDIT_CHAIN_KEY", "ENCRYPTION_KEYS",
                "DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY",
                "GOOGLE_CLIENT_SECRET", "FLOWER_BASIC_AUTH", "SENTRY_DSN", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "SMOKE_PASSWORD", "DATA_SOURCE_NAME", "REDIS_ADDR"}
APP_IMAGE = "personal-assistant"


# This module needs no database and no Redis.
pytestmark = pytest.mark.fast


def validator():
    try:
        import kubernetes_validate
    except ImportError:
        message = "kubernetes-validate is not installed: pip install 'kubernetes-validate>=1.30' (in .[test])"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    return kubernetes_validate


def manifests() -> list[tuple[Path, dict]]:
    import yaml

    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path, document))
    return found


def pod_spec(document: dict) -> dict:
    """The pod template's spec of a Deployment, Job or CronJob ({} for other kinds)."""
    spec = document.get("spec", {})
    if "jobTemplate" in spec:
        spec = spec["jobTemplate"]["spec"]
    return spec.get("template", {}).get("spec", {})


def by_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _path, doc in manifests() if doc["kind"] == kind}


def test_every_manifest_validates_against_the_kubernetes_schemas():
    kv = validator()
    documents = manifests()
    assert len(documents) >= 12
    for path, document in documents:
        try:
            kv.validate(document, KUBERNETES_VERSION, strict=True)
        except kv.ValidationError as exc:
            pytest.fail(f"{path.name} {document['kind']}/{document['metadata']['name']}: {exc}")


def test_the_validator_refuses_a_broken_manifest():
    kv = validator()
    deployment = copy.deepcopy(by_kind("Deployment")["api"])
    deployment["spec"]["replicas"] = "three"
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment = copy.deepcopy(by_kind("Deployment")["api"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}  # a typo
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest():
    import yaml

    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    on_disk = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def worker_queues(deployment: dict) -> set[str]:
    command = " ".join(deployment["spec"]["template"]["spec"]["containers"][0]["command"])
    match = re.search(r"--queues[\s=]+([\w,]+)", command)
    assert match, f"no --queues in {deployment['metadata']['name']}"
    return set(match.group(1).split(","))


def test_workers_take_every_queue_once_and_outlast_their_longest_job():
    workers = {name: d for name, d in by_kind("Deployment").items() if name.startswith("worker")}
    taken: list[str] = []
    for name, deployment in workers.items():
        queues = worker_queues(deployment)
        taken += sorted(queues)
        longest = max((jt.time_limit for jt in REGISTRY.values() if jt.queue in queues), default=0)
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        # Warm shutdown waits for running jobs, each cut off at its hard time limit at worst.
        assert grace > longest, f"{name}: grace {grace}s is not above its longest job's {longest}s"
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert sorted(taken) == sorted(QUEUES)


def test_compose_grace_periods_outlast_the_longest_jobs_too():
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    units = {"s": 1, "m": 60, "h": 3600}
    for name, service in services.items():
        if not name.startswith("worker"):
            continue
        queues = set(re.search(r"--queues[\s=]+([\w,]+)", " ".join(service["command"])).group(1).split(","))
        value = service["stop_grace_period"]
        grace = int(value[:-1]) * units[value[-1]]
        longest = max((jt.time_limit for jt in REGISTRY.values() if jt.queue in queues), default=0)
        assert grace > longest, f"compose {name}: stop_grace_period {value} vs {longest}s"


def test_api_has_replicas_probes_limits_autoscaler_and_disruption_budget():
    api = by_kind("Deployment")["api"]
    assert api["spec"]["replicas"] >= 3
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    # Above gunicorn's graceful timeout plus the preStop pause.
    assert api["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 35 + 5
    hpa = by_kind("HorizontalPodAutoscaler")["api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "api" and hpa["spec"]["minReplicas"] >= 3
    labels = api["spec"]["selector"]["matchLabels"]
    assert any(pdb["spec"]["selector"]["matchLabels"] == labels for pdb in by_kind("PodDisruptionBudget").values())


def test_exactly_one_beat_recreated_not_rolled():
    beat = by_kind("Deployment")["beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"


def test_secrets_are_referenced_never_written_down():
    assert not by_kind("Secret"), "Secrets are created by the operator (ops/README.md), not kept here"
    for name, config in by_kind("ConfigMap").items():
        assert not SECRET_NAMES & set(config.get("data", {})), f"ConfigMap {name} holds a secret"
    for path, document in manifests():
        for container in pod_spec(document).get("containers", []):
            if container["image"] == APP_IMAGE:
                assert {"secretRef": {"name": "assistant-secrets"}} in container.get("envFrom", []), (
                    f"{path.name}: {container['name']} does not read the Secret")
            for variable in container.get("env", []):
                assert variable["name"] not in SECRET_NAMES or "valueFrom" in variable, (
                    f"{path.name}: {variable['name']} written inline")


def test_the_migration_job_runs_the_upgrade():
    job = by_kind("Job")["assistant-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["assistant", "db", "upgrade"]


def test_artifacts_and_backups_live_in_object_storage_not_in_a_pod():
    config = by_kind("ConfigMap")["assistant-config"]["data"]
    assert config["OBJECT_STORAGE_URL"].startswith("s3://")
    assert not by_kind("PersistentVolumeClaim"), "object storage replaces the shared artifacts volume"
    for name, deployment in by_kind("Deployment").items():
        if name == "beat":
            continue  # its schedule file only remembers last run times: an emptyDir is enough
        mounts = {m["mountPath"] for c in pod_spec(deployment)["containers"] for m in c.get("volumeMounts", [])}
        assert not mounts & {"/data", "/artifacts"}, f"{name} keeps files that die with its pod: {mounts}"


def test_the_exporters_are_scraped_and_read_their_urls_from_the_secret():
    deployments = by_kind("Deployment")
    for name, port, variable, key in (("postgres-exporter", "9187", "DATA_SOURCE_NAME", "DATABASE_URL"),
                                      ("redis-exporter", "9121", "REDIS_ADDR", "REDIS_URL")):
        template = deployments[name]["spec"]["template"]
        assert template["metadata"]["annotations"]["prometheus.io/port"] == port
        [env] = template["spec"]["containers"][0]["env"]
        assert env == {"name": variable, "valueFrom": {"secretKeyRef": {"name": "assistant-secrets", "key": key}}}


def test_the_smoke_test_is_a_suspended_cronjob_to_run_after_each_rollout():
    cronjob = by_kind("CronJob")["assistant-smoke"]
    assert cronjob["spec"]["suspend"] is True
    [container] = pod_spec(cronjob)["containers"]
    assert container["command"][:3] == ["assistant", "smoke", "--api"]
    assert container["command"][3] == "http://api:8000"  # the api Service
    readme = (ROOT / "ops" / "README.md").read_text()
    assert "create job --from=cronjob/assistant-smoke" in readme
