"""The Kubernetes runner: a job is a Kubernetes Job in one namespace, fenced by a NetworkPolicy that denies all traffic.

The objects (Kubernetes API reference, batch/v1 Job and networking.k8s.io/v1 NetworkPolicy) are built by pure
functions, :func:`job_manifest` and :func:`network_policy_manifest`, unit-tested against the API schemas
(kubernetes-validate, strict). What every job pod gets, whatever the tool:

- an image from an allowed registry, pinned by digest (``registry/repository@sha256:...``): a tag can be moved, a
  digest cannot; checked when the allow-list is loaded and again when the Job is built;
- no service-account token (``automountServiceAccountToken: false``), no service links, non-root user, read-only
  root file system, no privilege escalation, every capability dropped, the runtime's seccomp profile;
- each dataset mounted read-only from the datasets volume (``subPath`` = its id) under ``DATA_PATH``
  (``/home/ds/datasets``, upstream's path), the job's sandbox (``subPath`` = ``<uid>/sandbox`` of the jobs volume,
  which the job service mounts at its work dir to review outputs) writable at ``SANDBOX_PATH``, a bounded
  ``emptyDir`` at ``/tmp``;
- the flavour as requests and limits (CPU, memory, ephemeral storage, GPUs), ``activeDeadlineSeconds`` its wall time,
  ``backoffLimit: 0`` (a failed tool is not rerun);
- a NetworkPolicy selecting only this job's pod with both policy types and no rule: no ingress, no egress.

The runner talks to the API server with the service's own service-account token (the chart's Role allows exactly:
create, get, delete Jobs and NetworkPolicies, and read Pods and their logs, in the jobs namespace).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field

from eucaim_node.settings import NodeSettings

from ...core.catalogue import PINNED_IMAGE, Tool
from ...core.model import Mount
from ...ports import RunPlan, RunRequest, RunResult

log = logging.getLogger("eucaim_node.jobs.kubernetes")

DATA_PATH = "/home/ds/datasets"
SANDBOX_PATH = "/home/ds/persistent-home/FEM"
LABEL_UID = "eucaim.eu/job-uid"
MANAGED_BY = {"app.kubernetes.io/managed-by": "eucaim-node-jobs", "app.kubernetes.io/component": "job"}
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ImageNotAllowed(ValueError):
    pass


class KubernetesSettings(NodeSettings):
    jobs_k8s_namespace: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
                                    description="The namespace jobs run in (the chart's Role is only there).")
    jobs_k8s_allowed_registries: str = Field(
        description="Comma-separated registries (host[:port]) job images may come from.")
    jobs_k8s_datasets_claim: str = Field(description="PersistentVolumeClaim holding the materialised datasets.")
    jobs_k8s_sandbox_claim: str = Field(description="PersistentVolumeClaim holding the jobs' sandboxes.")
    jobs_k8s_api_url: str = Field(default="https://kubernetes.default.svc")
    jobs_k8s_run_as_user: int = Field(default=10001, ge=1, le=2**31 - 1)
    jobs_k8s_poll_seconds: float = Field(default=2.0, gt=0, le=60)
    jobs_k8s_tmp_mib: int = Field(default=256, ge=1, le=1 << 20)

    def registries(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.jobs_k8s_allowed_registries.split(",") if r.strip())


def k8s_name(uid: str) -> str:
    """A DNS-1123 label of at most 63 characters for the job's objects."""
    return f"eucaim-job-{uid}"[:63].rstrip("-")


def checked_image(tool: Tool, registries: frozenset[str]) -> str:
    """The tool's image if it is pinned by digest and comes from an allowed registry; ImageNotAllowed otherwise."""
    match = PINNED_IMAGE.match(tool.image or "")
    if match is None:
        raise ImageNotAllowed(f"tool {tool.ref} has no image pinned by digest")
    if match["registry"] not in registries:
        raise ImageNotAllowed(f"tool {tool.ref}: registry {match['registry']} is not allowed "
                              f"(allowed: {', '.join(sorted(registries)) or 'none'})")
    return match.group(0)


def _quantity_mib(mib: int) -> str:
    return f"{mib}Mi"


def job_manifest(request: RunRequest, settings: KubernetesSettings) -> dict[str, Any]:
    """The batch/v1 Job of ``request`` (see the module's docstring for what every job pod gets)."""
    flavour, name = request.flavour, k8s_name(request.job_uid)
    image = checked_image(request.tool, settings.registries())
    labels = {**MANAGED_BY, LABEL_UID: request.job_uid}
    limits: dict[str, str] = {"cpu": str(flavour.cpu), "memory": _quantity_mib(flavour.memory_mib),
                              "ephemeral-storage": _quantity_mib(settings.jobs_k8s_tmp_mib)}
    if flavour.gpu:
        limits["nvidia.com/gpu"] = str(flavour.gpu)
    mounts = [{"name": "datasets", "mountPath": f"{DATA_PATH}/{dataset_id}", "subPath": dataset_id, "readOnly": True}
              for dataset_id in request.datasets]
    mounts += [{"name": "sandbox", "mountPath": SANDBOX_PATH, "subPath": f"{request.job_uid}/sandbox"},
               {"name": "tmp", "mountPath": "/tmp"}]
    user = settings.jobs_k8s_run_as_user
    container = {
        "name": "job",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": list(request.args),
        "env": [{"name": "DATA_PATH", "value": DATA_PATH}, {"name": "SANDBOX_PATH", "value": SANDBOX_PATH},
                {"name": "HOME", "value": SANDBOX_PATH}, {"name": "TMPDIR", "value": "/tmp"}],
        "resources": {"requests": {k: v for k, v in limits.items() if k != "ephemeral-storage"}, "limits": limits},
        "securityContext": {"runAsNonRoot": True, "runAsUser": user, "runAsGroup": user, "privileged": False,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": mounts,
        "workingDir": SANDBOX_PATH,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": settings.jobs_k8s_namespace, "labels": labels,
                     "annotations": {"eucaim.eu/tool": request.tool.ref, "eucaim.eu/flavour": flavour.name}},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": flavour.max_seconds,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": user, "runAsGroup": user, "fsGroup": user,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [
                        {"name": "datasets", "persistentVolumeClaim": {"claimName": settings.jobs_k8s_datasets_claim,
                                                                       "readOnly": True}},
                        {"name": "sandbox", "persistentVolumeClaim": {"claimName": settings.jobs_k8s_sandbox_claim}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": _quantity_mib(settings.jobs_k8s_tmp_mib)}},
                    ],
                },
            },
        },
    }


def network_policy_manifest(request: RunRequest, settings: KubernetesSettings) -> dict[str, Any]:
    """A NetworkPolicy selecting only this job's pod, both directions, no rule: all traffic denied."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": k8s_name(request.job_uid), "namespace": settings.jobs_k8s_namespace,
                     "labels": {**MANAGED_BY, LABEL_UID: request.job_uid}},
        "spec": {"podSelector": {"matchLabels": {LABEL_UID: request.job_uid}},
                 "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []},
    }


class KubernetesRunner:
    def __init__(self, settings: KubernetesSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._client = client

    def check_tools(self, tools: dict[str, Tool]) -> None:
        """At start: every tool must be runnable here (pinned, allowed registry); ValueError names the first that is not."""
        for tool in tools.values():
            checked_image(tool, self.settings.registries())

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            token = (SERVICE_ACCOUNT / "token").read_text().strip()
            self._client = httpx.AsyncClient(base_url=self.settings.jobs_k8s_api_url, timeout=30,
                                             verify=str(SERVICE_ACCOUNT / "ca.crt"),
                                             headers={"authorization": f"Bearer {token}"})
        return self._client

    def plan(self, request: RunRequest) -> RunPlan:
        request.job_dir.mkdir(parents=True, exist_ok=True)
        request.sandbox.mkdir(exist_ok=True)
        manifest = job_manifest(request, self.settings)
        container = manifest["spec"]["template"]["spec"]["containers"][0]
        mounts = [Mount(m.get("subPath", m["name"]) if m["name"] != "tmp" else "tmp", m["mountPath"],
                        bool(m.get("readOnly", False))) for m in container["volumeMounts"]]
        return RunPlan(mounts=mounts, env={e["name"]: e["value"] for e in container["env"]},
                       command=[container["image"], *container["args"]])

    async def run(self, request: RunRequest, plan: RunPlan, cancelled: asyncio.Event) -> RunResult:
        s, http, name = self.settings, self._http(), k8s_name(request.job_uid)
        batch = f"/apis/batch/v1/namespaces/{s.jobs_k8s_namespace}/jobs"
        policies = f"/apis/networking.k8s.io/v1/namespaces/{s.jobs_k8s_namespace}/networkpolicies"
        try:
            (await http.post(policies, json=network_policy_manifest(request, s))).raise_for_status()
            (await http.post(batch, json=job_manifest(request, s))).raise_for_status()
        except (httpx.HTTPError, ImageNotAllowed) as exc:
            return RunResult(None, [f"the Kubernetes Job could not be created: {exc}"])
        errors: list[str] = []
        try:
            while True:
                try:
                    await asyncio.wait_for(cancelled.wait(), timeout=s.jobs_k8s_poll_seconds)
                    errors.append("cancelled (DELETE)")
                    break
                except TimeoutError:
                    pass
                status = (await http.get(f"{batch}/{name}")).raise_for_status().json().get("status", {})
                if status.get("succeeded") or status.get("failed"):
                    for condition in status.get("conditions") or []:
                        if condition.get("type") == "Failed" and condition.get("reason") == "DeadlineExceeded":
                            errors.append(f"killed: exceeded the flavour's wall time of {request.flavour.max_seconds} s")
                    break
            exit_code = await self._collect(request, name)
        except httpx.HTTPError as exc:
            return RunResult(None, [*errors, f"lost track of the Kubernetes Job: {exc}"])
        finally:
            await self._delete(name, batch, policies)
        if exit_code not in (0, None) and not errors:
            errors.append(f"the tool exited with code {exit_code}")
        return RunResult(exit_code, errors)

    async def _collect(self, request: RunRequest, name: str) -> int | None:
        """Write the pod's log to the job's log file; the container's exit code."""
        http, namespace = self._http(), self.settings.jobs_k8s_namespace
        pods = (await http.get(f"/api/v1/namespaces/{namespace}/pods",
                               params={"labelSelector": f"job-name={name}"})).raise_for_status().json()["items"]
        if not pods:
            return None
        pod = pods[0]
        text = (await http.get(f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}/log")).text
        await asyncio.to_thread(request.log.write_text, text, "utf-8")
        for status in pod.get("status", {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated")
            if terminated:
                return int(terminated.get("exitCode", 0))
        return None

    async def _delete(self, name: str, batch: str, policies: str) -> None:
        http = self._http()
        for url in (f"{batch}/{name}", f"{policies}/{name}"):
            try:
                await http.request("DELETE", url, json={"propagationPolicy": "Foreground"})
            except httpx.HTTPError as exc:
                log.warning("could not delete a job object", extra={"url": url, "error": str(exc)[:200]})
