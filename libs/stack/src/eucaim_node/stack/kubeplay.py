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
from .settings import StackSettings

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


# -- the stack the pods run against -----------------------------------------------------------------------------

#: The deploy check's stack ports: every default shifted by this (plus EUCAIM_TEST_PORT_SHIFT), apart from the
#: test profile's +10000.
DEPLOY_PORT_OFFSET = 20000
#: Infrastructure only: the chart runs the services and the witness.
INFRASTRUCTURE = ("kafka", "ferretdb", "orthanc-clinical", "orthanc-research")


def deploy_stack_settings(shift: int = 0) -> StackSettings:
    """A stack profile ``deploy`` on this machine's address (reachable from podman's pods), its own ports, its
    Orthancs' REST API open to the pods (password-protected) and the clinical Orthanc admitting this machine."""
    from .settings import LOCAL_MODALITY_AET, PORT_FIELDS, Modality

    host = host_address()
    base = StackSettings()
    return StackSettings(name="deploy", host=host, orthanc_remote_access=True, stable_age=2,
                         clinical_modalities=(Modality(aet=LOCAL_MODALITY_AET, host=host),),
                         **{f: getattr(base, f) + DEPLOY_PORT_OFFSET + shift for f in PORT_FIELDS})


# -- the chart rendered for this machine ------------------------------------------------------------------------

CA_SECRET = {"secretName": "eucaim-node-ca", "key": "ca.pem"}


def machine_values(settings: StackSettings, image: str) -> dict[str, Any]:
    """Values for this machine: infrastructure on the host, the local image, the stack's CA; nothing else changes."""
    repository, _, tag = image.rpartition(":")
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "node": {"sitePrefix": settings.site_prefix},
        "kafka": {"bootstrapServers": f"{settings.host}:{settings.kafka_port}", "topicPartitions": 3,
                  "replicationFactor": 1, "tls": {"caSecret": CA_SECRET}},
        "mongodb": {"database": settings.mongo_database, "tls": {"caSecret": CA_SECRET},
                    "usersJob": {"enabled": False}},  # the stack made FerretDB's users from the same passwords
        "clinicalOrthanc": {"url": configs.orthanc_url(settings, "clinical"),
                            "username": configs.orthanc_username(settings, "clinical")},
        "researchOrthanc": {"url": configs.orthanc_url(settings, "research"),
                            "username": configs.orthanc_username(settings, "research")},
        # A signed head soon after the study, not after the default minute.
        "components": {"audit": {"env": {"EUCAIM_AUDIT_HEAD_INTERVAL_SECONDS": "5"}}},
    }


def render_chart(values: dict[str, Any], work: Path, chart: Path | None = None) -> list[dict[str, Any]]:
    """``helm template`` of the chart (or of a copy, ``chart``) with ``values`` (helm v3.22.0, installed on first use)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("helm_tool", repo_root() / "deploy" / "helm" / "helm_tool.py")
    assert spec is not None and spec.loader is not None
    helm_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helm_tool)
    values_file = work / "machine-values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    done = subprocess.run([str(helm_tool.ensure_helm()), "template", RELEASE, str(chart or chart_dir()), "--namespace",
                           NAMESPACE, "-f", str(values_file)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise ComponentFailed("chart", "helm template failed", log_tail=done.stderr[-3000:])
    (work / "rendered.yaml").write_text(done.stdout)
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


# -- Secrets from the stack's generated files -------------------------------------------------------------------

def secret_value(settings: StackSettings, secret: str, key: str, witness: WitnessKeys) -> bytes:
    """The content of key ``key`` of Secret ``secret`` (the chart's default names), from the stack's files."""
    from .kafka_security import password_file

    files: dict[tuple[str, str], Path] = {
        ("eucaim-node-hmac-key", "hmac.key"): configs.hmac_key_file(settings),
        (CA_SECRET["secretName"], CA_SECRET["key"]): configs.ca_file(settings),
        ("eucaim-node-orthanc-clinical", "password"): configs.orthanc_password_file(settings, "clinical"),
        ("eucaim-node-orthanc-research", "password"): configs.orthanc_password_file(settings, "research"),
        ("eucaim-node-search-tokens", "tokens"): configs.search_token_file(settings),
        ("eucaim-node-audit-signing-key", "signing-key.pem"): configs.audit_signing_key_file(settings),
        ("eucaim-node-witness-token", "token"): configs.witness_token_file(settings),
        ("eucaim-node-witness-key", "witness.key"): witness.key_file,
    }
    if (secret, key) in files:
        return files[(secret, key)].read_bytes()
    if (secret, key) == ("eucaim-node-mongodb", "url"):
        return f"mongodb://{settings.host}:{settings.ferretdb_port}/".encode()
    if (secret, key) == ("eucaim-node-witness-vkey", "witness.vkey"):
        return witness.vkey.encode() + b"\n"
    if (secret, key) == ("eucaim-node-witness-logs", "logs.txt"):
        return witness.logs.encode() + b"\n"
    if secret == "eucaim-node-kafka-users":
        return password_file(settings, key).read_bytes()
    if secret.startswith("eucaim-node-mongodb-") and key == "password":
        return configs.mongo_password_file(settings, secret.removeprefix("eucaim-node-mongodb-")).read_bytes()
    raise ComponentFailed("chart", f"the deploy check has no local file for key {key!r} of Secret {secret!r}: "
                                   "add it to eucaim_node.stack.kubeplay.secret_value")


@dataclass(frozen=True)
class WitnessKeys:
    """The chart's witness: its key (made for the check), its verifier key, and the log it cosigns."""

    key_file: Path
    vkey: str
    logs: str


def witness_keys(settings: StackSettings, work: Path, name: str, origin: str) -> WitnessKeys:
    from eucaim_node.ledger import load_private_key, verifier_key
    from eucaim_node.ledger.cosignature import cosigner_verifier_key

    key_file = work / "witness.key"
    key = load_private_key(key_file, generate=True)
    ledger = load_private_key(configs.audit_signing_key_file(settings))
    return WitnessKeys(key_file=key_file, vkey=cosigner_verifier_key(name, key.public_key()),
                       logs=verifier_key(origin, ledger.public_key()))


def referenced_secrets(deployments: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Every (Secret, key) the Deployments read: projected volumes and ``secretKeyRef`` environment."""
    found: set[tuple[str, str]] = set()
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        for volume in pod.get("volumes", []):
            for source in volume.get("projected", {}).get("sources", []):
                found |= {(source["secret"]["name"], item["key"]) for item in source["secret"]["items"]}
        for container in pod["containers"]:
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    found.add((ref["name"], ref["key"]))
    return found


# -- what podman 4.3 lacks, bridged -----------------------------------------------------------------------------

#: Kinds `podman kube play` runs; the others are listed as not run (validated by `make helm-lint`).
PLAYED_KINDS = frozenset({"Deployment", "PersistentVolumeClaim"})


def component_of(obj: dict[str, Any]) -> str:
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component", obj["metadata"]["name"])


def stage_projected_secrets(pod: dict[str, Any], directory: Path, read: Any) -> None:
    """Replace each projected secret volume by a host directory with exactly its items (podman 4.3 mounts no
    Secret or projected volumes): same file names, the volume's defaultMode, group = the pod's fsGroup."""
    group = pod.get("securityContext", {}).get("fsGroup")
    for volume in pod.get("volumes", []):
        projected = volume.get("projected")
        if not projected:
            continue
        target = directory / volume["name"]
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True, mode=0o750)
        for source in projected["sources"]:
            for item in source["secret"]["items"]:
                path = target / item["path"]
                path.write_bytes(read(source["secret"]["name"], item["key"]))
                path.chmod(item.get("mode", projected.get("defaultMode", 0o644)))
                if group is not None:
                    os.chown(path, 0, group)
        if group is not None:
            os.chown(target, 0, group)
        del volume["projected"]
        volume["hostPath"] = {"path": str(target), "type": "Directory"}


def podman_secret_payload(keys: dict[str, bytes]) -> str:
    """What kube play 4.3 reads for ``secretKeyRef``: a JSON object of base64 values (a Secret's ``data``)."""
    return json.dumps({key: base64.b64encode(value).decode() for key, value in keys.items()})


def numeric_probe_ports(container: dict[str, Any]) -> None:
    """Probe ports by number and no ``ports`` list: podman 4.3 publishes every containerPort on the host (so the
    second pod listening on 8080 fails to start); the probes keep their paths, their named port resolved."""
    ports = {p["name"]: p["containerPort"] for p in container.pop("ports", []) if "name" in p}
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        http = container.get(kind, {}).get("httpGet")
        if http and isinstance(http.get("port"), str):
            http["port"] = ports[http["port"]]


@dataclass
class Played:
    """One pod of a Deployment played: its address and container, and the chart's probes (path by probe kind)."""

    component: str
    container: str
    address: str
    port: int
    probes: dict[str, str]


@dataclass
class DeployCheck:
    """Render, adapt, play, check and tear down the chart's workloads against a ``deploy`` stack profile."""

    settings: StackSettings
    image: str
    work: Path
    network: str
    subnet: ipaddress.IPv4Network
    played: list[Played] = field(default_factory=list)
    not_run: dict[str, list[str]] = field(default_factory=dict)
    podman_secrets: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, settings: StackSettings, image: str, shift: int = 0) -> DeployCheck:
        work = settings.state / "kubeplay"
        return cls(settings=settings, image=image, work=work, network=f"eucaim-deploy{shift}",
                   subnet=ipaddress.IPv4Network(f"10.90.{shift % 256}.0/24"))

    # -- set up ---------------------------------------------------------------------------------------------

    def render(self) -> list[dict[str, Any]]:
        self.work.mkdir(parents=True, exist_ok=True)
        objects = render_chart(machine_values(self.settings, self.image), self.work)
        for obj in objects:
            if obj["kind"] not in PLAYED_KINDS:
                self.not_run.setdefault(obj["kind"], []).append(obj["metadata"]["name"])
        return objects

    def play(self, objects: list[dict[str, Any]]) -> None:
        """Play each Deployment (with the claim it mounts) on the check's network at a fixed address."""
        from eucaim_node.ledger.settings import LedgerSettings

        deployments = [o for o in objects if o["kind"] == "Deployment"]
        claims = {o["metadata"]["name"]: o for o in objects if o["kind"] == "PersistentVolumeClaim"}
        services = {component_of(o): o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
        envs = {component_of(d): {e["name"]: e.get("value") for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
                for d in deployments}
        witness_name = next((env["EUCAIM_WITNESS_NAME"] for env in envs.values() if "EUCAIM_WITNESS_NAME" in env), "")
        origin = next((env["EUCAIM_AUDIT_LOG_ORIGIN"] for env in envs.values() if env.get("EUCAIM_AUDIT_LOG_ORIGIN")),
                      LedgerSettings.model_fields["audit_log_origin"].default)
        witness = witness_keys(self.settings, self.work, witness_name or "witness", origin)

        def read(secret: str, key: str) -> bytes:
            return secret_value(self.settings, secret, key, witness)

        self._create_podman_secrets(deployments, read)
        self._create_network()
        # One fixed address per pod (a Deployment of n replicas gets n), the first one behind the Service's name.
        addresses: dict[str, list[str]] = {}
        for deployment in deployments:
            first = 10 + sum(len(a) for a in addresses.values())
            addresses[component_of(deployment)] = [str(self.subnet.network_address + first + r)
                                                   for r in range(int(deployment["spec"].get("replicas", 1)))]
        aliases = [{"ip": addresses[c][0], "hostnames": [name]} for c, name in services.items() if c in addresses]
        for deployment in deployments:
            component = component_of(deployment)
            pod = deployment["spec"]["template"]["spec"]
            stage_projected_secrets(pod, self.work / "secrets" / component, read)
            pod["hostAliases"] = aliases  # the Services' names, as cluster DNS would resolve them
            [container] = pod["containers"]
            numeric_probe_ports(container)
            documents = [claims[v["persistentVolumeClaim"]["claimName"]] for v in pod.get("volumes", [])
                         if "persistentVolumeClaim" in v]
            self.volumes += [c["metadata"]["name"] for c in documents]
            file = self.work / f"{component}.yaml"
            file.write_text(yaml.safe_dump_all([*documents, deployment]))
            podman("kube", "play", "--replace", "--network", self.network,
                   *(arg for address in addresses[component] for arg in ("--ip", address)), str(file), timeout=300)
            probes = {kind: container[kind]["httpGet"]["path"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")
                      if "httpGet" in container.get(kind, {})}
            for replica in range(int(deployment["spec"].get("replicas", 1))):
                name = f"{deployment['metadata']['name']}-pod-{replica}-{container['name']}"
                if podman("container", "exists", name, check=False).returncode != 0:
                    raise ComponentFailed("kube play", f"no container {name} after playing {file.name}")
                [info] = json.loads(podman("inspect", name).stdout)
                address = info["NetworkSettings"]["Networks"][self.network]["IPAddress"]
                self.played.append(Played(component, name, address,
                                          int(container["readinessProbe"]["httpGet"]["port"]), probes))

    def _create_podman_secrets(self, deployments: list[dict[str, Any]], read: Any) -> None:
        by_secret: dict[str, dict[str, bytes]] = {}
        for secret, key in sorted(referenced_secrets(deployments)):
            by_secret.setdefault(secret, {})[key] = read(secret, key)
        for secret, keys in by_secret.items():
            podman("secret", "rm", secret, check=False)
            podman("secret", "create", secret, "-", input=podman_secret_payload(keys))
            self.podman_secrets.append(secret)

    def _create_network(self) -> None:
        podman("network", "rm", "--force", self.network, check=False)
        podman("network", "create", "--subnet", str(self.subnet), self.network)

    # -- checks ---------------------------------------------------------------------------------------------

    def wait_healthy(self, timeout: float) -> dict[str, dict[str, int | None]]:
        """Each pod's answer on each of the chart's probe paths, polled until all say 200 or ``timeout``."""
        deadline = time.monotonic() + timeout
        statuses: dict[str, dict[str, int | None]] = {}
        while True:
            for played in self.played:
                statuses[played.component] = {}
                for kind, path in played.probes.items():
                    try:
                        code: int | None = httpx.get(f"http://{played.address}:{played.port}{path}", timeout=3).status_code
                    except httpx.HTTPError:
                        code = None
                    statuses[played.component][kind] = code
            if all(c == 200 for s in statuses.values() for c in s.values()) or time.monotonic() > deadline:
                return statuses
            time.sleep(2)

    def security_of(self, played: Played) -> dict[str, Any]:
        """What podman applied of the pod's security context and secret mounts."""
        [info] = json.loads(podman("inspect", played.container).stdout)
        mounts = {m["Destination"]: m for m in info["Mounts"]}
        return {"user": info["Config"]["User"], "read_only_root": info["HostConfig"]["ReadonlyRootfs"],
                "capabilities": info["EffectiveCaps"] or [],
                "no_new_privileges": "no-new-privileges" in (info["HostConfig"].get("SecurityOpt") or []),
                "secrets_read_only": {d: "ro" in m.get("Options", []) or not m.get("RW", True)
                                      for d, m in mounts.items() if d.startswith(str(SECRETS_MOUNT))},
                "restarts": info.get("RestartCount", 0), "running": info["State"]["Running"]}

    def logs(self, played: Played, lines: int = 40) -> str:
        done = podman("logs", "--tail", str(lines), played.container, check=False)
        return (done.stdout + done.stderr)[-4000:]

    # -- tear down ------------------------------------------------------------------------------------------

    def stop_pods(self) -> None:
        """Remove the played pods (the next phase's services join the same consumer groups)."""
        for file in sorted(self.work.glob("*.yaml")):
            if file.name not in ("machine-values.yaml", "rendered.yaml"):
                podman("kube", "down", str(file), check=False, timeout=300)

    def tear_down(self) -> None:
        """Remove what this check (or an earlier, interrupted one) made: pods, volumes, secrets, network, files."""
        for file in sorted(self.work.glob("*.yaml")) if self.work.exists() else []:
            if file.name not in ("machine-values.yaml", "rendered.yaml"):
                podman("kube", "down", str(file), check=False, timeout=300)
        for name in compose_image_services(compose_file()):
            podman("rm", "--force", "--time", "30", f"compose-{name}", check=False)
        rendered = self.work / "rendered.yaml"
        objects = [o for o in yaml.safe_load_all(rendered.read_text()) if o] if rendered.is_file() else []
        volumes = {*self.volumes, *(o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"),
                   *(f"compose-{v}" for v in compose_file().get("volumes", {}))}
        secrets = {*self.podman_secrets,
                   *(name for name, _ in referenced_secrets([o for o in objects if o["kind"] == "Deployment"]))}
        for volume in sorted(volumes):
            podman("volume", "rm", "--force", volume, check=False)
        for secret in sorted(secrets):
            podman("secret", "rm", secret, check=False)
        podman("network", "rm", "--force", self.network, check=False)
        shutil.rmtree(self.work, ignore_errors=True)


# -- docker-compose.yml's services on the same infrastructure ---------------------------------------------------

#: Compose's infrastructure names in the services' environment → this machine's endpoints (their images cannot be
#: pulled here, and their TLS certificates name this machine's address, not `kafka` or `mongodb`).
COMPOSE_ENDPOINTS = ("EUCAIM_KAFKA_BOOTSTRAP_SERVERS", "EUCAIM_MONGO_URL", "EUCAIM_CLINICAL_ORTHANC_URL",
                     "EUCAIM_RESEARCH_ORTHANC_URL")


def compose_file() -> dict[str, Any]:
    return yaml.safe_load((repo_root() / "docker-compose.yml").read_text())


def compose_image_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose services built from the repository's image: the node's part of the compose file."""
    return {name: s for name, s in compose["services"].items() if s.get("build") == "."}


def compose_secret_key(source: str) -> tuple[str, str]:
    """The chart's (Secret, key) holding what compose's secret ``source`` holds (deploy/compose/make-secrets.sh)."""
    fixed = {"ca.pem": (CA_SECRET["secretName"], CA_SECRET["key"]), "hmac-key": ("eucaim-node-hmac-key", "hmac.key"),
             "orthanc-clinical-password": ("eucaim-node-orthanc-clinical", "password"),
             "orthanc-research-password": ("eucaim-node-orthanc-research", "password"),
             "audit-signing-key": ("eucaim-node-audit-signing-key", "signing-key.pem"),
             "search-tokens": ("eucaim-node-search-tokens", "tokens"),
             "witness-key": ("eucaim-node-witness-key", "witness.key"),
             "witness-vkey": ("eucaim-node-witness-vkey", "witness.vkey"),
             "witness-logs": ("eucaim-node-witness-logs", "logs.txt"),
             "witness-token": ("eucaim-node-witness-token", "token")}
    if source in fixed:
        return fixed[source]
    if source.startswith("kafka-") and source.endswith(".password"):
        return "eucaim-node-kafka-users", source.removeprefix("kafka-").removesuffix(".password")
    if source.startswith("mongo-") and source.endswith("-password"):
        return f"eucaim-node-mongodb-{source.removeprefix('mongo-').removesuffix('-password')}", "password"
    raise ComponentFailed("compose", f"the deploy check has no local file for compose secret {source!r}")


def rewrite_endpoint(value: str, settings: StackSettings) -> str:
    """compose's `kafka:9092` / `http://orthanc-clinical:8042` → this machine's address and the profile's port."""
    ports = {"kafka": settings.kafka_port, "mongodb": settings.ferretdb_port,
             "orthanc-clinical": configs.orthanc_http_port(settings, "clinical"),
             "orthanc-research": configs.orthanc_http_port(settings, "research")}
    for name, port in ports.items():
        for default in (9092, 27017, 8042):
            value = value.replace(f"{name}:{default}", f"{settings.host}:{port}")
    return value


@dataclass
class ComposeRun:
    """docker-compose.yml's image services as compose would run them (environment, secrets bind-mounted with the
    files' own ownership and mode, read-only root, tmpfs, dropped capabilities, no-new-privileges, group_add,
    named volumes), with podman run on the check's network; the witness reachable by its service name."""

    check: DeployCheck
    containers: dict[str, str] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)
    rewritten: dict[str, list[str]] = field(default_factory=dict)

    def start(self, secrets_gid: int) -> None:
        compose = compose_file()
        services = compose_image_services(compose)
        settings = self.check.settings
        staging = self.check.work / "compose-secrets"
        staging.mkdir(parents=True, exist_ok=True)
        witness = witness_keys(settings, self.check.work, "witness.eucaim-node", "eucaim-node/audit")
        first = 10 + len(self.check.played) + 20
        self.addresses = {name: str(self.check.subnet.network_address + first + i) for i, name in enumerate(services)}
        hosts = [arg for name, address in self.addresses.items() for arg in ("--add-host", f"{name}:{address}")]
        for name, service in services.items():
            args = ["--detach", "--name", f"compose-{name}", "--network", self.check.network, "--ip", self.addresses[name],
                    *hosts]
            if service.get("read_only"):
                args.append("--read-only")
            args += [a for t in service.get("tmpfs", []) for a in ("--tmpfs", t)]
            args += [a for o in service.get("security_opt", []) for a in ("--security-opt", o)]
            args += [a for c in service.get("cap_drop", []) for a in ("--cap-drop", c)]
            args += [a for g in service.get("group_add", []) for a in ("--group-add", str(g).replace(
                "${EUCAIM_SECRETS_GID:-10001}", str(secrets_gid)))]
            if service.get("user"):
                args += ["--user", str(service["user"])]
            for volume in service.get("volumes", []):
                source, _, target = volume.partition(":")
                args += ["--volume", f"compose-{source}:{target}"]
                self.check.volumes.append(f"compose-{source}")
            for entry in service.get("secrets", []):
                source = entry if isinstance(entry, str) else entry["source"]
                target = entry if isinstance(entry, str) else entry.get("target", source)
                path = staging / source
                if not path.exists():  # as make-secrets.sh leaves it: the file's own owner, group and mode
                    if source == "audit-log-public-key":  # a verifier's trust anchor, no Secret of the chart
                        path.write_bytes(configs.audit_log_public_key_file(settings).read_bytes())
                    else:
                        path.write_bytes(secret_value(settings, *compose_secret_key(source), witness))
                    os.chown(path, 0, secrets_gid)
                    path.chmod(0o640)
                args += ["--volume", f"{path}:/run/secrets/{target}:ro"]
            env = {str(k): str(v) for k, v in (service.get("environment") or {}).items()}
            self.rewritten[name] = [k for k in COMPOSE_ENDPOINTS if k in env]
            env.update({k: rewrite_endpoint(env[k], settings) for k in self.rewritten[name]})
            args += [a for k, v in env.items() for a in ("--env", f"{k}={v}")]
            image = service["image"] if "/" in service["image"] else f"localhost/{service['image']}"
            podman("run", *args, image, *service["command"])
            self.containers[name] = f"compose-{name}"

    def wait_ready(self, timeout: float) -> dict[str, int | None]:
        deadline = time.monotonic() + timeout
        while True:
            statuses: dict[str, int | None] = {}
            for name in self.containers:
                try:
                    statuses[name] = httpx.get(f"http://{self.addresses[name]}:8080/health/ready", timeout=3).status_code
                except httpx.HTTPError:
                    statuses[name] = None
            if all(s == 200 for s in statuses.values()) or time.monotonic() > deadline:
                return statuses
            time.sleep(2)

    def logs(self, name: str) -> str:
        done = podman("logs", "--tail", "30", self.containers[name], check=False)
        return (done.stdout + done.stderr)[-3000:]

    def stop(self) -> None:
        for name in compose_image_services(compose_file()):
            podman("rm", "--force", "--time", "30", f"compose-{name}", check=False)
