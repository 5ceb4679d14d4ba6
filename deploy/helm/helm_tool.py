"""The real helm (helm.sh/helm/v3 v3.22.0), built with `go install` on first use and cached.

Tests and `make helm-lint` call :func:`ensure_helm`; nothing binary is committed. The binary lives in
``${XDG_CACHE_HOME:-~/.cache}/eucaim-node/bin/helm-<version>`` beside the stack's other components and
is accepted only if ``helm version`` reports exactly the pinned version. The link flags are those of
helm's own release build (its Makefile): the version, and the Kubernetes version the lint rules and
``.Capabilities`` assume, taken from the client-go version in helm's go.mod (``go install`` alone
reports ``v3.22`` and Kubernetes v1.20, which would reject this chart's ``kubeVersion``).

    python deploy/helm/helm_tool.py      # prints the path of the helm binary, building it if needed
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from eucaim_node.stack.install import file_lock
from eucaim_node.stack.settings import default_cache_dir

HELM_MODULE = "helm.sh/helm/v3"
HELM_VERSION = "v3.22.0"


def helm_binary(cache_dir: Path | None = None, version: str = HELM_VERSION) -> Path:
    return (cache_dir or default_cache_dir()) / "bin" / f"helm-{version}"


def installed_version(binary: Path) -> str | None:
    if not binary.is_file():
        return None
    try:
        done = subprocess.run([str(binary), "version", "--template", "{{.Version}}"], capture_output=True,
                              text=True, timeout=30)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _kubernetes_version(env: dict[str, str], version: str) -> tuple[str, str]:
    """(major, minor) of Kubernetes for helm ``version``: client-go v0.X.Y is Kubernetes 1.X."""
    done = subprocess.run(["go", "mod", "download", "-json", f"{HELM_MODULE}@{version}"], env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"go mod download {HELM_MODULE}@{version} failed:\n{done.stderr[-2000:]}")
    go_mod = Path(json.loads(done.stdout)["GoMod"]).read_text()
    found = re.search(r"^\s*k8s\.io/client-go v0\.(\d+)\.\d+", go_mod, re.MULTILINE)
    if not found:
        raise RuntimeError(f"no k8s.io/client-go requirement in helm {version}'s go.mod")
    return "1", found.group(1)


def ensure_helm(cache_dir: Path | None = None, version: str = HELM_VERSION) -> Path:
    """Path of a helm binary reporting ``version``; built from the Go module proxy when missing."""
    binary = helm_binary(cache_dir, version)
    if installed_version(binary) == version:
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(binary.parent / f".install-helm-{version}.lock"):
        if installed_version(binary) == version:
            return binary
        if shutil.which("go") is None:
            raise RuntimeError(f"Go ('go') is required to build helm {version} (go install {HELM_MODULE}/cmd/helm)")
        with tempfile.TemporaryDirectory(prefix="helm-", dir=binary.parent) as gobin:
            env = {**os.environ, "GOBIN": gobin, "GOFLAGS": "-buildvcs=false", "GOTOOLCHAIN": "local",
                   "CGO_ENABLED": "0"}
            major, minor = _kubernetes_version(env, version)
            flags = [f"-X {HELM_MODULE}/internal/version.version={version}"] + [
                f"-X {HELM_MODULE}/pkg/{package}.k8sVersion{part}={number}"
                for package in ("lint/rules", "chartutil") for part, number in (("Major", major), ("Minor", minor))]
            command = ["go", "install", "-trimpath", "-ldflags=-s -w " + " ".join(flags),
                       f"{HELM_MODULE}/cmd/helm@{version}"]
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
            if done.returncode != 0:
                raise RuntimeError(f"building helm {version} failed:\n{done.stderr[-3000:]}")
            (Path(gobin) / "helm").replace(binary)
    found = installed_version(binary)
    if found != version:
        raise RuntimeError(f"built helm reports {found!r}, expected {version!r}")
    return binary


if __name__ == "__main__":
    try:
        print(ensure_helm())
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
