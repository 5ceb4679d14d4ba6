"""The container image built with podman on a locally made Debian base: nothing is pulled from a registry.

Podman, runc, mmdebstrap and catatonit (the pods' pause process) come from Debian's packages on first use, like
Orthanc. The base (Debian bookworm minbase with Debian's Python 3.11) is made by mmdebstrap from the host's own
apt sources and imported with ``podman import``; the image is the repository's Dockerfile built on it
(``--build-arg BASE_IMAGE``). Both are tagged by a digest of what they are made from, so a second build with the
same inputs is a lookup. Podman runs with the project's containers.conf (deploy/podman): runc (crun refuses this
machine's hybrid cgroups), cgroupfs, explicit ulimits (root here lacks CAP_SYS_RESOURCE to raise its own).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .install import _run, apt_install, file_lock
from .process import ComponentFailed
from .settings import StackSettings, find_repo_root

log = logging.getLogger(__name__)

PODMAN_PACKAGES: tuple[str, ...] = ("podman", "runc", "mmdebstrap", "catatonit")
PODMAN_BINARIES: tuple[str, ...] = ("podman", "runc", "mmdebstrap", "catatonit")

#: The base image: Debian bookworm minbase and what the Dockerfile needs of it (a `python` 3.11 with venv for
#: the build stage, useradd for the runtime stage, the CA list for TLS to the package index and to services).
BASE_SUITE = "bookworm"
BASE_PACKAGES: tuple[str, ...] = ("python3", "python3-venv", "python-is-python3", "passwd", "ca-certificates")
#: Documentation, manuals and translations are not installed in the base (dpkg path filters).
BASE_PATH_EXCLUDES: tuple[str, ...] = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*",
                                       "/usr/share/locale/*", "/usr/share/lintian/*")
BASE_REPOSITORY = "localhost/eucaim-node-base"
IMAGE_REPOSITORY = "localhost/eucaim-node"
#: The mutable tag `make image` also sets (docker-compose.yml and the chart's local values name the digest tag).
IMAGE_DEV_TAG = f"{IMAGE_REPOSITORY}:dev"
#: The host's CA bundle, handed to the build as the secret `index-ca` (a TLS-intercepting proxy may sit in front of
#: the package index); only the build stage sees it, no layer keeps it.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
#: What the image is built from: a change to any of these is a new image tag.
IMAGE_INPUTS: tuple[str, ...] = ("Dockerfile", ".dockerignore", "pyproject.toml", "uv.lock", "libs", "services")
_SKIPPED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".hypothesis", "tests"})


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    size_bytes: int
    #: Seconds this call spent building (0 when the tag existed already).
    build_seconds: float
    base: str

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1_000_000


def repo_root() -> Path:
    root = find_repo_root()
    if root is None:
        raise ComponentFailed("image", "run from the eucaim-node repository (Dockerfile not found)")
    return root


def containers_conf() -> Path:
    return repo_root() / "deploy" / "podman" / "containers.conf"


def podman_env() -> dict[str, str]:
    """The environment of every podman call: the project's containers.conf."""
    return {**os.environ, "CONTAINERS_CONF": str(containers_conf())}


def _podman_missing() -> list[str]:
    return [binary for binary in PODMAN_BINARIES if shutil.which(binary) is None]


def ensure_podman() -> str:
    """The podman binary, with runc, mmdebstrap and catatonit installed from Debian on first use."""
    missing = _podman_missing()
    if missing:
        apt_install("podman", PODMAN_PACKAGES, missing)
        still = _podman_missing()
        if still:
            raise ComponentFailed("podman", f"still missing after apt-get install: {', '.join(still)}")
    return shutil.which("podman") or "podman"


def podman(*args: str, timeout: float = 900, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``podman args`` with the project's configuration; raise ComponentFailed (with its output) on failure."""
    done = subprocess.run([ensure_podman(), *args], env=podman_env(), capture_output=True, text=True,
                          timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)
    if check and done.returncode != 0:
        tail = "\n".join((done.stdout + "\n" + done.stderr).strip().splitlines()[-25:])
        raise ComponentFailed("podman", f"podman {' '.join(args[:3])} ... failed with exit code {done.returncode}",
                              log_tail=tail)
    return done


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag, check=False).returncode == 0


def image_size(tag: str) -> int:
    return int(json.loads(podman("image", "inspect", tag).stdout)[0]["Size"])


def base_tag() -> str:
    recipe = json.dumps([BASE_SUITE, BASE_PACKAGES, BASE_PATH_EXCLUDES, "minbase"]).encode()
    return f"{BASE_REPOSITORY}:{BASE_SUITE}-{hashlib.sha256(recipe).hexdigest()[:12]}"


def host_apt_sources() -> Path:
    """The host's Debian sources (deb822 or one-line): the base comes from the same mirror as the host's packages."""
    for candidate in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        if candidate.is_file() and candidate.stat().st_size:
            return candidate
    raise ComponentFailed("image", "no Debian apt sources on this host (/etc/apt/sources.list[.d]) for mmdebstrap")


def ensure_base_image(settings: StackSettings | None = None) -> str:
    """The local Debian base, made with mmdebstrap (about 25 s) on first use and kept in podman's storage."""
    tag = base_tag()
    ensure_podman()
    if image_exists(tag):
        return tag
    cache = (settings or StackSettings()).cache_dir
    with file_lock(cache / ".install-image-base.lock"):
        if image_exists(tag):
            return tag
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix="base-", dir=cache))
        try:
            tarball = work / "base.tar"
            _run("image-base", [
                "mmdebstrap", "--variant=minbase", "--mode=root", "--format=tar",
                f"--include={','.join(BASE_PACKAGES)}",
                *(f"--dpkgopt=path-exclude={pattern}" for pattern in BASE_PATH_EXCLUDES),
                BASE_SUITE, str(tarball), str(host_apt_sources()),
            ], timeout=900)
            podman("import", "--change", 'CMD ["python3"]', str(tarball), tag)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log.info("made the Debian base %s in %.1f s", tag, time.monotonic() - started)
    return tag


def image_digest(root: Path) -> str:
    """A digest of every file the build reads (tests and caches excluded): the image's tag."""
    digest = hashlib.sha256()
    for name in IMAGE_INPUTS:
        path = root / name
        files = [path] if path.is_file() else sorted(
            p for p in path.rglob("*") if p.is_file() and not _SKIPPED_DIRS.intersection(p.relative_to(root).parts))
        for file in files:
            digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_image(settings: StackSettings | None = None) -> BuiltImage:
    """Build the repository's Dockerfile with podman on the local base, or reuse the build of the same inputs."""
    root = repo_root()
    base = ensure_base_image(settings)
    tag = f"{IMAGE_REPOSITORY}:{image_digest(root)}-{base.rsplit('-', 1)[-1]}"
    seconds = 0.0
    if not image_exists(tag):
        started = time.monotonic()
        secret = ["--secret", f"id=index-ca,src={HOST_CA_BUNDLE}"] if HOST_CA_BUNDLE.is_file() else []
        # --format docker: the OCI format has no HEALTHCHECK (podman drops it with a warning).
        podman("build", "--format", "docker", "--pull=never", "--build-arg", f"BASE_IMAGE={base}", *secret,
               "--tag", tag, str(root), timeout=1800)
        seconds = time.monotonic() - started
    podman("tag", tag, IMAGE_DEV_TAG)
    remove_older_builds(tag)
    podman("image", "prune", "--force", check=False)  # the build stage's dangling layers
    return BuiltImage(tag=tag, size_bytes=image_size(tag), build_seconds=seconds, base=base)


def remove_older_builds(keep: str) -> list[str]:
    """Untag every earlier build of the image (each code change is a new tag): the disk holds one build."""
    listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={IMAGE_REPOSITORY}").stdout
    older = [t for t in listed.split() if t.startswith(f"{IMAGE_REPOSITORY}:") and t not in (keep, IMAGE_DEV_TAG)]
    for tag in older:
        podman("rmi", tag, check=False)
    return older
