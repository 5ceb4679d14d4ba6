"""Run the Helm chart's workloads in podman (``podman kube play``) against the local stack: the deploy check.

The chart is rendered with values for this machine (infrastructure on the host, the image from ``make image``,
Secrets made from the stack's generated files). podman 4.3 runs Pods, Deployments and PersistentVolumeClaims
only; what it lacks is bridged here, each step named in :func:`adapt_for_podman` and in docs/operations.md:

- Secret and projected volumes: each pod's projected secret volume becomes a host directory holding exactly the
  projected items (same file names, mode 0440, group = the pod's fsGroup) at the same mount path.
- ``secretKeyRef`` environment: a podman secret per Secret (JSON map of base64 values, what kube play reads).
- Services (cluster DNS): every pod gets ``hostAliases`` mapping each chart Service name to the static address
  its pod is played with on a private podman network.
Services, NetworkPolicies, PodDisruptionBudgets, KEDA ScaledObjects, ServiceMonitors and the MongoDB users hook
Job are not run (``make helm-lint`` validates them).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from . import configs
from .podman import podman, repo_root
from .process import ComponentFailed

log = logging.getLogger(__name__)

CHART = Path("deploy") / "helm" / "eucaim-node"
#: Where the chart mounts a component's secret files (templates/components.yaml).
SECRETS_MOUNT = Path("/run/secrets/eucaim")
RELEASE = "node"
NAMESPACE = "eucaim"


def chart_dir() -> Path:
    return repo_root() / CHART


def chart_components(values: dict[str, Any] | None = None) -> dict[str, str]:
    """The chart's enabled components (values ``components``) → the module each runs (``eucaim_node.<module>``)."""
    if values is None:
        values = yaml.safe_load((chart_dir() / "values.yaml").read_text())
    return {name: c["module"] for name, c in values["components"].items() if c.get("enabled", True)}


def secret_file_name(env: str) -> str:
    """The file name the chart gives a ``*_FILE`` variable's secret: EUCAIM_MONGO_PASSWORD_FILE → mongo-password."""
    return env.lower().removeprefix("eucaim_").removesuffix("_file").replace("_", "-")


def host_address() -> str:
    """This machine's address on its default route: reachable from the host and from podman's pods alike."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent, the kernel only picks the source
        return probe.getsockname()[0]
