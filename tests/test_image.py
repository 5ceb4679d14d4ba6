"""The container image, built with podman (``make image``; reused when its inputs did not change), run for real.

Every component of the Helm chart (its ``components`` list, so a new service is covered when it lands) answers
``--help`` in the image, and starts in it against the session stack's Kafka, FerretDB and Orthancs over the host
network, the way the chart runs it: non-root, read-only root, no capabilities, secrets as read-only files under
/run/secrets/eucaim (mode 0440, group of the pod's fsGroup), only /tmp writable. Each is ready on the chart's
readiness path, then stops cleanly on SIGTERM.
"""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import socket
import time
from pathlib import Path

import httpx
import pytest

from eucaim_node.runtime.settings import ENV_PREFIX
from eucaim_node.stack import configs
from eucaim_node.stack.kubeplay import SECRETS_MOUNT, chart_components, secret_file_name
from eucaim_node.stack.podman import BuiltImage, build_image, podman

#: A container runtime and the image build: not for `make test-unit`.
pytestmark = pytest.mark.integration

UID = 10001  # the chart's runAsUser / fsGroup and the image's USER
COMPONENTS = chart_components()
#: The chart's container security context as podman run options.
HARDENED = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--user", f"{UID}:{UID}",
            "--tmpfs", "/tmp:size=256m,mode=1777"]


@pytest.fixture(scope="session")
def image() -> BuiltImage:
    return build_image()


def test_the_image_is_non_root_without_build_tools_and_compiled(image):
    inspected = json.loads(podman("image", "inspect", image.tag).stdout)[0]
    assert inspected["Config"]["User"] == f"{UID}:{UID}"
    assert "/health/live" in inspected["Healthcheck"]["Test"][-1]  # kept: built in docker format, not OCI
    probe = ("import importlib.util as u, shutil, pathlib, json; "
             "print(json.dumps([[m for m in ('pip', 'setuptools', 'wheel', 'ensurepip') if u.find_spec(m)], "
             "[t for t in ('pip', 'pip3', 'uv', 'gcc', 'cc', 'make') if shutil.which(t)], "
             "sum(1 for p in pathlib.Path('/app/.venv').rglob('*.py') if 'site-packages' in p.parts), "
             "sum(1 for p in pathlib.Path('/app/.venv').rglob('*.pyc'))]))")
    done = podman("run", "--rm", *HARDENED, image.tag, "python", "-c", probe)
    modules, tools, sources, compiled = json.loads(done.stdout)
    assert modules == [] and tools == [], (modules, tools)
    assert compiled >= sources > 0  # bytecode made at build time: a read-only root cannot write it later
    caches = podman("run", "--rm", image.tag, "sh", "-c", "ls -A /root/.cache /opt/uv 2>/dev/null | wc -l").stdout
    assert caches.strip() == "0"


def test_each_component_answers_help_in_the_image(image):
    """``--help`` exits 0 listing the variables (one container for all; other arguments: libs/runtime's tests)."""
    driver = ("import json, subprocess, sys\n"
              "out = {}\n"
              "for m in sys.argv[1:]:\n"
              "    h = subprocess.run([sys.executable, '-m', f'eucaim_node.{m}', '--help'], capture_output=True, text=True)\n"
              "    out[m] = [h.returncode, h.stdout]\n"
              "print(json.dumps(out))\n")
    done = podman("run", "--rm", *HARDENED, image.tag, "python", "-c", driver, *COMPONENTS.values())
    answers = json.loads(done.stdout)
    for name, module in COMPONENTS.items():
        help_code, help_text = answers[module]
        assert help_code == 0 and help_text.startswith(f"usage: python -m eucaim_node.{module}"), (name, help_text)
        assert "EUCAIM_" in help_text and "(required)" in help_text, name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _container_env(stack, name: str, module: str, port: int, state: Path) -> dict[str, str]:
    """The stack's environment of ``module`` on another health port; the witness on its own port and state."""
    if module == "witness":
        env = configs.render_witness_env(stack.settings)
        env.pop("EUCAIM_WITNESS_VKEY_FILE")  # an output the native witness writes; nothing to write here
        return {**env, "EUCAIM_WITNESS_KEY_GENERATE": "false", "EUCAIM_WITNESS_PORT": str(port),
                "EUCAIM_WITNESS_STATE_DIR": str(state), "EUCAIM_LOG_FORMAT": "json"}
    return {**stack.service_env(module), "EUCAIM_HEALTH_HOST": "127.0.0.1", "EUCAIM_HEALTH_PORT": str(port)}


def _stage_secrets(env: dict[str, str], staging: Path) -> tuple[dict[str, str], list[str]]:
    """Copy every *_FILE the environment names into ``staging`` as the chart projects them (0440, group 10001),
    point the variable at /run/secrets/eucaim/<name> and return the mount options."""
    staging.mkdir(mode=0o750)
    shutil.chown(staging, group=UID)
    moved = dict(env)
    for key, value in env.items():
        if key.startswith(ENV_PREFIX) and key.endswith("_FILE"):
            target = staging / secret_file_name(key)
            shutil.copyfile(value, target)
            target.chmod(0o440)
            shutil.chown(target, group=UID)
            moved[key] = str(SECRETS_MOUNT / target.name)
    return moved, ["--volume", f"{staging}:{SECRETS_MOUNT}:ro"]


def _ready(port: int, timeout: float, path: str) -> int | None:
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        try:
            status = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code
            if status == 200:
                return status
        except httpx.HTTPError:
            pass
        time.sleep(1)
    return status


def _start(stack, image, tmp_path: Path, name: str, module: str) -> tuple[str, int]:
    """Start ``module`` in the image as the chart runs it; return (container, health port)."""
    port = _free_port()
    state = tmp_path / f"{name}-state"
    state.mkdir()
    shutil.chown(state, UID, UID)
    env, mounts = _stage_secrets(_container_env(stack, name, module, port, state), tmp_path / f"{name}-secrets")
    extra: list[str] = []
    for key, value in env.items():  # a directory the service writes (witness state, dataset root): its own
        if key.startswith(ENV_PREFIX) and not key.endswith("_FILE") and Path(value).is_absolute() \
                and Path(value).is_dir():  # volume, as in the chart, owned by the service's user
            volume = tmp_path / f"{name}-{key.lower()}"
            volume.mkdir()
            shutil.chown(volume, UID, UID)
            extra += ["--volume", f"{volume}:{value}"]
    container = f"eucaim-image-test-{name}-{port}"
    podman("run", "--detach", "--name", container, "--network", "host", *HARDENED, *mounts, *extra,
           *(arg for key, value in env.items() for arg in ("--env", f"{key}={value}")),
           image.tag, "python", "-m", f"eucaim_node.{module}")
    return container, port


def test_each_component_starts_in_the_image_against_the_stack_and_stops_cleanly(stack, image, tmp_path):
    started: dict[str, tuple[str, int]] = {}
    try:  # every container started is removed, also when a later one fails to start
        for name, module in COMPONENTS.items():
            started[name] = _start(stack, image, tmp_path, name, module)
        probe_path = {name: "/health/live" if COMPONENTS[name] == "witness" else "/health/ready" for name in started}
        with concurrent.futures.ThreadPoolExecutor(len(started)) as pool:
            statuses = dict(zip(started, pool.map(
                lambda n: _ready(started[n][1], 120, probe_path[n]), started), strict=True))
        logs = {n: podman("logs", c, check=False).stderr[-4000:] for n, (c, _) in started.items()}
        assert all(s == 200 for s in statuses.values()), {n: (s, logs[n]) for n, s in statuses.items() if s != 200}
        for name, (container, _) in started.items():
            podman("stop", "--time", "40", container)
            code = json.loads(podman("inspect", container).stdout)[0]["State"]["ExitCode"]
            assert code == 0, (name, code, podman("logs", container, check=False).stderr[-2000:])
    finally:
        for container, _ in started.values():
            podman("rm", "--force", container, check=False)
