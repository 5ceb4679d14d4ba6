"""The chart with the processing-job service on (deploy/helm/eucaim-node/ci/jobs-values.yaml): valid, least privilege."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from eucaim_node.jobs.adapters.outbound.kubernetes import KubernetesSettings
from eucaim_node.jobs.config import JobsSettings
from eucaim_node.jobs.core.catalogue import load_flavours, load_tools
from eucaim_node.runtime.settings import ENV_PREFIX

from .test_helm import CHART, KUBERNETES_VERSIONS, by_kind, container, helm, render, run_helm  # noqa: F401

JOBS_VALUES = yaml.safe_load((CHART / "ci" / "jobs-values.yaml").read_text())


def test_lint_strict_passes_with_the_job_service_on(helm, tmp_path):
    done = run_helm(helm, "lint", "--strict", str(CHART), values=JOBS_VALUES, tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_objects_are_valid_kubernetes_in_strict_mode(helm, tmp_path, version):
    objects = render(helm, tmp_path, JOBS_VALUES, "--kube-version", version)
    assert {"Role", "RoleBinding", "ConfigMap"} <= {o["kind"] for o in objects}
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_role_allows_only_what_running_jobs_needs_in_one_namespace(helm, tmp_path):
    objects = render(helm, tmp_path, JOBS_VALUES)
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    [role] = [o for o in objects if o["kind"] == "Role"]
    rules = {(g, r, tuple(rule["verbs"])) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert rules == {("batch", "jobs", ("create", "get", "delete")),
                     ("networking.k8s.io", "networkpolicies", ("create", "delete")),
                     ("", "pods", ("list",)), ("", "pods/log", ("get",))}
    [binding] = [o for o in objects if o["kind"] == "RoleBinding"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "node-eucaim-node-jobs", "namespace": "eucaim"}]
    deployments = by_kind(objects, "Deployment")
    # Only the job service's pods carry an API token, and it is the bound account's.
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is (name == "jobs"), name
    assert deployments["jobs"]["spec"]["template"]["spec"]["serviceAccountName"] == "node-eucaim-node-jobs"


def test_the_job_service_gets_the_settings_it_knows_and_the_catalogue_it_loads(helm, tmp_path):
    objects = render(helm, tmp_path, JOBS_VALUES)
    deployment = by_kind(objects, "Deployment")["jobs"]
    c = container(deployment)
    env = {e["name"]: e.get("value") for e in c["env"]}
    known = {ENV_PREFIX + f.upper() for cls in (JobsSettings, KubernetesSettings) for f in cls.model_fields}
    required = {ENV_PREFIX + f.upper() for cls in (JobsSettings, KubernetesSettings)
                for f, info in cls.model_fields.items() if info.is_required()}
    eucaim = {k for k in env if k.startswith(ENV_PREFIX)}
    assert eucaim <= known, eucaim - known
    assert required <= eucaim, required - eucaim
    assert env["EUCAIM_JOBS_RUNNER"] == "kubernetes" and env["EUCAIM_JOBS_K8S_NAMESPACE"] == "eucaim"
    writable = {m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp", "/var/lib/eucaim-jobs"}
    [catalogue] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("job-catalogue")]
    (tmp_path / "tools.json").write_text(catalogue["data"]["tools.json"])
    (tmp_path / "flavours.json").write_text(catalogue["data"]["flavours.json"])
    tools = load_tools(tmp_path / "tools.json", local=False)
    assert list(tools) == ["eucaim/series-stats:1.0"]
    flavours, default = load_flavours(tmp_path / "flavours.json")
    assert default == "small" and "medium-gpu" in flavours  # the flavour the FEM's launcher.json asks for


def test_the_job_service_reaches_the_api_server_and_nothing_it_does_not_need(helm, tmp_path):
    policy = by_kind(render(helm, tmp_path, JOBS_VALUES), "NetworkPolicy")["jobs"]
    ports = sorted(p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"])
    assert ports == [53, 53, 443, 9092, 27017]


@pytest.mark.parametrize("bad", [
    {"processing": {"tools": [{"name": "eucaim/x", "tag": "1.0", "image": "registry.example.org/eucaim/x:1.0"}]}},
    {"components": {"jobs": {"replicas": 2}}},
    {"processing": {"allowedRegistries": ["https://registry.example.org"]}},
])
def test_unsafe_job_values_are_rejected_by_the_schema(helm, tmp_path, bad):
    values = yaml.safe_load(yaml.safe_dump(JOBS_VALUES))
    for key, value in bad.items():
        for sub, inner in value.items():
            values.setdefault(key, {}).setdefault(sub, {})
            if isinstance(inner, dict):
                values[key][sub].update(inner)
            else:
                values[key][sub] = inner
    done = run_helm(helm, "template", "node", str(CHART), values=values, tmp_path=tmp_path)
    assert done.returncode != 0 and "values don't meet the specifications of the schema" in done.stderr


def test_the_ci_values_file_is_the_one_make_helm_lint_uses():
    assert "ci/jobs-values.yaml" in Path(CHART.parents[2] / "Makefile").read_text()
