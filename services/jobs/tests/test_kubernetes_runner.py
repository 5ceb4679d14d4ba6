"""The Kubernetes runner's objects, validated against the Kubernetes API schemas (strict), and its API calls."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import httpx
import kubernetes_validate
import pytest

from eucaim_node.jobs.adapters.outbound.kubernetes import (
    DATA_PATH,
    SANDBOX_PATH,
    ImageNotAllowed,
    KubernetesRunner,
    KubernetesSettings,
    job_manifest,
    network_policy_manifest,
)
from eucaim_node.jobs.core.catalogue import CatalogueError, Tool, load_tools
from eucaim_node.jobs.core.model import Flavour
from eucaim_node.jobs.ports import RunRequest

KUBERNETES_VERSIONS = ("1.27.0", "1.37.0")  # as the chart: its kubeVersion floor and the newest schemas
DIGEST = "sha256:" + "ab" * 32
TOOL = Tool("eucaim/series-stats", "1.0", "", (), f"registry.example.org/eucaim/series-stats@{DIGEST}", None)
GPU = Flavour("medium-gpu", cpu=2, memory_mib=4096, max_seconds=3600, disk_mib=2048, gpu=1)
SETTINGS = KubernetesSettings(jobs_k8s_namespace="eucaim-jobs", jobs_k8s_allowed_registries="registry.example.org",
                              jobs_k8s_datasets_claim="eucaim-datasets", jobs_k8s_sandbox_claim="eucaim-jobs")
UID = "5d0f7c9e-3a51-4c1e-9f0b-6f2e8a4b1c3d"
DATASETS = {"0b6cf3a1-1d0e-4c55-9a57-0c0f9f6a7e21": Path("/unused"), "1c7d04b2-2e1f-4d66-8b68-1d1f0a7b8f32": Path("/u")}


def request(tmp_path: Path, tool: Tool = TOOL) -> RunRequest:
    return RunRequest(UID, tool, ["--modalities", "CT"], GPU, DATASETS, tmp_path / UID)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_job_and_its_network_policy_are_valid_kubernetes_objects(tmp_path, version):
    for manifest in (job_manifest(request(tmp_path), SETTINGS), network_policy_manifest(request(tmp_path), SETTINGS)):
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_strict_validation_can_fail():
    manifest = job_manifest(request(Path("/tmp")), SETTINGS)
    manifest["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_job_pod_is_locked_down(tmp_path):
    job = job_manifest(request(tmp_path), SETTINGS)
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "privileged": False,
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    assert container["image"] == TOOL.image and "@sha256:" in container["image"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    for dataset_id in DATASETS:
        assert mounts[f"{DATA_PATH}/{dataset_id}"] == {"name": "datasets", "mountPath": f"{DATA_PATH}/{dataset_id}",
                                                       "subPath": dataset_id, "readOnly": True}
    assert mounts[SANDBOX_PATH]["subPath"] == f"{UID}/sandbox" and not mounts[SANDBOX_PATH].get("readOnly")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["datasets"]["persistentVolumeClaim"] == {"claimName": "eucaim-datasets", "readOnly": True}
    assert job["spec"]["activeDeadlineSeconds"] == 3600 and job["spec"]["backoffLimit"] == 0
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "4096Mi", "ephemeral-storage": "256Mi",
                                                "nvidia.com/gpu": "1"}
    assert {e["name"]: e["value"] for e in container["env"]}["DATA_PATH"] == DATA_PATH
    assert container["args"] == ["--modalities", "CT"]


def test_the_network_policy_denies_all_traffic_of_this_job_only(tmp_path):
    policy = network_policy_manifest(request(tmp_path), SETTINGS)
    assert policy["spec"] == {"podSelector": {"matchLabels": {"eucaim.eu/job-uid": UID}},
                              "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}
    job = job_manifest(request(tmp_path), SETTINGS)
    assert job["spec"]["template"]["metadata"]["labels"]["eucaim.eu/job-uid"] == UID


@pytest.mark.parametrize("image", [
    f"evil.example.com/eucaim/series-stats@{DIGEST}",           # a registry not allowed
    "registry.example.org.evil.com/eucaim/x@" + DIGEST,          # not the allowed host, only a prefix of it
])
def test_an_image_from_another_registry_is_refused(tmp_path, image):
    with pytest.raises(ImageNotAllowed, match="not allowed"):
        job_manifest(request(tmp_path, replace(TOOL, image=image)), SETTINGS)
    with pytest.raises(ImageNotAllowed):
        KubernetesRunner(SETTINGS, client=httpx.AsyncClient()).check_tools({"x:1": replace(TOOL, image=image)})


@pytest.mark.parametrize("image", ["registry.example.org/eucaim/series-stats:1.0",
                                   "registry.example.org/eucaim/series-stats@sha256:abc"])
def test_an_image_not_pinned_by_digest_is_refused_in_the_allow_list(tmp_path, image):
    path = tmp_path / "tools.json"
    path.write_text(json.dumps({"tools": [{"name": "eucaim/x", "tag": "1.0", "image": image}]}))
    with pytest.raises(CatalogueError, match="pinned by digest"):
        load_tools(path, local=False)
    with pytest.raises(ImageNotAllowed, match="pinned"):
        job_manifest(request(tmp_path, replace(TOOL, image=image)), SETTINGS)


async def test_the_runner_creates_the_policy_before_the_job_collects_the_log_and_deletes_both(tmp_path):
    calls: list[tuple[str, str]] = []
    name = f"eucaim-job-{UID}"[:63]

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append((req.method, req.url.path))
        if req.method == "GET" and req.url.path.endswith(f"/jobs/{name}"):
            return httpx.Response(200, json={"status": {"failed": 1}})
        if req.url.path.endswith("/pods"):
            return httpx.Response(200, json={"items": [{"metadata": {"name": "p1"}, "status": {"containerStatuses": [
                {"state": {"terminated": {"exitCode": 3}}}]}}]})
        if req.url.path.endswith("/log"):
            return httpx.Response(200, text="tool output\n")
        return httpx.Response(201, json={})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="https://k8s")
    runner = KubernetesRunner(replace_settings(jobs_k8s_poll_seconds=0.01), client=client)
    req = request(tmp_path)
    result = await runner.run(req, runner.plan(req), asyncio.Event())
    assert result.exit_code == 3 and result.errors == ["the tool exited with code 3"]
    assert req.log.read_text() == "tool output\n"
    assert calls[0] == ("POST", "/apis/networking.k8s.io/v1/namespaces/eucaim-jobs/networkpolicies")
    assert calls[1] == ("POST", "/apis/batch/v1/namespaces/eucaim-jobs/jobs")
    assert ("DELETE", f"/apis/batch/v1/namespaces/eucaim-jobs/jobs/{name}") in calls
    assert ("DELETE", f"/apis/networking.k8s.io/v1/namespaces/eucaim-jobs/networkpolicies/{name}") in calls


def replace_settings(**changes) -> KubernetesSettings:
    return SETTINGS.model_copy(update=changes)
