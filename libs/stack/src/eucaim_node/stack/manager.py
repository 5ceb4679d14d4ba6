"""The local stack: Kafka, FerretDB, two Orthancs and the five node services as managed loopback processes."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pymongo

from eucaim_node.events import OPERATOR, SUPER_USER
from eucaim_node.store import MongoSettings
from eucaim_node.store.access import PRINCIPALS

from . import configs, ferretdb, install, kafka_security, probes, tls
from .install import file_lock
from .process import ManagedProcess
from .secrets_files import (
    ensure_secrets,
    read_first_token,
    read_mongo_password,
    read_orthanc_password,
    read_search_token,
)
from .settings import SERVICE_MODULES, StackSettings

log = logging.getLogger(__name__)

#: Marker (in the Kafka home) that the KRaft storage was formatted with the super user's SCRAM credential.
SCRAM_BOOTSTRAPPED = "scram-bootstrapped"

#: Started in this order before the services; the witness runs beside the node, not as one of its services.
INFRASTRUCTURE: tuple[str, ...] = ("kafka", "ferretdb", "orthanc-clinical", "orthanc-research", "witness")
SERVICES: tuple[str, ...] = SERVICE_MODULES
#: Services whose work scales with replicas (stateless consumers of partitioned topics): the local stack can run
#: a second process of each, named ``<service>-2`` (decision 0093). Reception keeps a cursor and audit appends to
#: one tree: they stay single.
SCALABLE: tuple[str, ...] = ("anonymisation", "metadata")
#: A replica's health port: the service's own plus this.
REPLICA_PORT_OFFSET = 20


def replica_name(service: str, number: int) -> str:
    return service if number == 1 else f"{service}-{number}"


@dataclass
class ComponentStatus:
    name: str
    kind: str  # "infrastructure" | "service"
    endpoints: dict[str, str]
    pid: int | None
    running: bool
    healthy: bool
    log: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Component:
    """A managed process plus what must happen before it can start (install, configuration) and once it is ready."""

    name: str
    kind: str
    process: ManagedProcess
    prepare: Callable[[], None] = field(default=lambda: None)
    #: Run once the component is ready, also when it was running already (e.g. FerretDB's users).
    after_ready: Callable[[], None] = field(default=lambda: None)


class Stack:
    """Installs on first use, starts, health-checks, reports and stops one profile of the local stack.

    All state (configs, data, pid files, logs, secrets, node.env) lives under ``settings.state_dir``; downloaded
    or built artefacts under ``settings.cache_dir``. Every method is synchronous and safe to call from a test
    that runs an event loop.
    """

    def __init__(self, settings: StackSettings | None = None) -> None:
        self.settings = settings or StackSettings()
        #: Seconds spent per step during the last up()/start(): "install:<component>" and "start:<component>".
        self.timings: dict[str, float] = {}
        self._components: dict[str, Component] = {}
        for component in self._build_components():
            self._components[component.name] = component

    @classmethod
    def test_profile(cls, **overrides: Any) -> Stack:
        """The stack of the pytest session: see :meth:`StackSettings.test_profile`."""
        return cls(StackSettings.test_profile(**overrides))

    # -- paths and endpoints --------------------------------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        return self.settings.state

    def kafka_bootstrap(self) -> str:
        return f"{self.settings.host}:{self.settings.kafka_port}"

    def kafka_client_options(self, principal: str = SUPER_USER) -> dict[str, Any]:
        """aiokafka options (bootstrap, SASL_SSL, SCRAM user, CA) of ``principal``: the super user by default
        (tests, probes), ``operator`` for the CLI, or a service's name. The one place for connection details."""
        return kafka_security.client_options(self.settings, principal)

    def kafka_env(self, principal: str = OPERATOR) -> dict[str, str]:
        """The ``EUCAIM_KAFKA_*`` variables of ``principal`` (default: the operator's CLI)."""
        return kafka_security.kafka_env(self.settings, principal)

    def mongo_url(self) -> str:
        """FerretDB's address, without credentials: open clients with :meth:`mongo_client`."""
        return f"mongodb://{self.settings.host}:{self.settings.ferretdb_port}/"

    def mongo_settings(self, principal: str = configs.MONGO_ADMIN) -> MongoSettings:
        """The MongoDB settings of a principal (a service, ``cli``, or the local admin), as that service reads them."""
        env = configs.mongo_env(self.settings, principal)
        return MongoSettings(**{key.removeprefix("EUCAIM_").lower(): value for key, value in env.items()})

    def mongo_options(self, principal: str = configs.MONGO_ADMIN) -> dict[str, Any]:
        """Keyword arguments for a (Async)MongoClient on :meth:`mongo_url`: TLS with the stack's CA and the user of
        ``principal`` (default: the local admin, which tests, benchmarks and the walkthrough use)."""
        return self.mongo_settings(principal).mongo_client_options()

    def mongo_client(self, principal: str = configs.MONGO_ADMIN, *, asynchronous: bool = False, **kwargs: Any) -> Any:
        """A MongoClient (or AsyncMongoClient) on the local FerretDB as ``principal``: how tests, benchmarks and the
        walkthrough open MongoDB, so that none repeats the connection details. ``kwargs`` go to the client."""
        cls = pymongo.AsyncMongoClient if asynchronous else pymongo.MongoClient
        return cls(self.mongo_url(), **{"serverSelectionTimeoutMS": 5000, **kwargs, **self.mongo_options(principal)})

    def orthanc_url(self, instance: str) -> str:
        """``instance`` is 'clinical' or 'research'."""
        return configs.orthanc_url(self.settings, instance)

    def orthanc_dicom(self, instance: str) -> tuple[str, int, str]:
        """(host, DICOM port, AET) of an Orthanc instance (the research one runs no DICOM server: see
        :func:`configs.orthanc_dicom_security`)."""
        return (self.settings.host, configs.orthanc_dicom_port(self.settings, instance),
                configs.orthanc_aet(self.settings, instance))

    def local_modality_aet(self) -> str:
        """The AE title this machine may C-STORE with (storescu connects from the stack's host address)."""
        for modality in self.settings.clinical_modalities:
            if modality.host == self.settings.host:
                return modality.aet
        raise ValueError(f"no modality in EUCAIM_STACK_CLINICAL_MODALITIES sends from {self.settings.host}: "
                         "the clinical Orthanc would refuse a C-STORE from this machine")

    def orthanc_auth(self, instance: str) -> tuple[str, str]:
        """(username, password) of one Orthanc; the password is read from its own secret file."""
        return configs.orthanc_username(self.settings, instance), read_orthanc_password(self.settings, instance)

    def hmac_key_file(self) -> Path:
        return configs.hmac_key_file(self.settings)

    def orthanc_password_file(self, instance: str) -> Path:
        return configs.orthanc_password_file(self.settings, instance)

    def node_env_file(self) -> Path:
        return configs.node_env_file(self.settings)

    def search_token_file(self) -> Path:
        return configs.search_token_file(self.settings)

    def search_token(self) -> str:
        """The generated token of the local federated search client (``Authorization: Secret <token>``)."""
        return read_search_token(self.settings)

    def search_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.health_port('catalogue_sync')}/federation/search"

    def jobs_url(self) -> str:
        """The job service's Jobman API (the FEM client's ``.../jobman-service/api/v1``)."""
        return f"http://{self.settings.host}:{self.settings.jobs_health_port}/jobman-service/api/v1"

    def jobs_token_file(self) -> Path:
        """Clients of the Jobman API, ``name:token`` per line (the local one: ``local``)."""
        return configs.jobs_token_file(self.settings)

    def jobs_token(self) -> str:
        """The local Jobman API client's token (principal ``local``)."""
        return read_first_token(self.jobs_token_file())

    def jobs_review_token(self) -> str:
        """The local data holder's token for the review API (principal ``local-reviewer``)."""
        return read_first_token(configs.jobs_review_token_file(self.settings))

    def witness_url(self) -> str:
        """The audit ledger's witness (C2SP tlog-witness)."""
        return configs.witness_url(self.settings)

    def names(self) -> tuple[str, ...]:
        return tuple(self._components)

    def process(self, name: str) -> ManagedProcess:
        return self._component(name).process

    def log_path(self, name: str) -> Path:
        return self._component(name).process.log_path

    def node_env(self) -> dict[str, str]:
        """The operator CLI's settings (the content of ``node.env``): no Orthanc credentials."""
        return configs.render_node_env(self.settings)

    def service_env(self, service: str) -> dict[str, str]:
        """The environment the stack gives ``service``: only what its settings class needs."""
        return configs.render_service_env(self.settings, service)

    # -- lifecycle ------------------------------------------------------------------------------------------

    def install(self) -> dict[str, float]:
        """Make sure every artefact is installed (Kafka jars, FerretDB, Debian packages); return install timings."""
        before = dict(install.INSTALL_TIMINGS)
        install.ensure_debian_packages()
        install.ensure_kafka(self.settings)
        install.ensure_ferretdb(self.settings)
        return {k: v for k, v in install.INSTALL_TIMINGS.items() if before.get(k) != v}

    def up(self, services: bool = False) -> None:
        """Start the infrastructure (and with ``services=True`` the five services); healthy ones are left alone.

        Raises :class:`ComponentFailed` naming the first component that could not be made ready.
        """
        self.timings = {}
        with self._lock():
            self._prepare_state()
            install.ensure_debian_packages("tools")
            self._start_group(INFRASTRUCTURE)
            if services:
                self._start_group(SERVICES + self.replicas())

    def down(self) -> list[str]:
        """Stop everything this profile started (services first); return the names of what was stopped."""
        with self._lock():
            stopped = self._stop_group(tuple(replica_name(s, 2) for s in SCALABLE) + SERVICES)
            stopped += self._stop_group(tuple(reversed(INFRASTRUCTURE)))
        return stopped

    def reset(self) -> None:
        """Stop everything of this profile and wipe its state dir (the cache survives), for an empty start."""
        self.down()
        with self._lock():
            state = self.state_dir
            cache = self.settings.cache_dir
            if not state.exists():
                return
            for child in state.iterdir():
                if child.name == ".lock" or _contains(child, cache):
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()

    def start(self, name: str) -> None:
        """Start one component (e.g. a service mid-test) and wait until it is ready."""
        with self._lock():
            self._prepare_state()
            self._start_group((name,))

    def stop(self, name: str) -> bool:
        with self._lock():
            return self._component(name).process.stop()

    def restart(self, name: str) -> None:
        with self._lock():
            self._component(name).process.stop()
            self._prepare_state()
            self._start_group((name,))

    def replicas(self) -> tuple[str, ...]:
        """The extra replicas ``up`` starts (``service_replicas``); ``start(name)`` starts one at any time."""
        return tuple(replica_name(s, n) for s in SCALABLE for n in range(2, self.settings.service_replicas + 1))

    def status(self) -> dict[str, ComponentStatus]:
        result: dict[str, ComponentStatus] = {}
        optional = {replica_name(name, 2) for name in SCALABLE} - set(self.replicas())
        for component in self._components.values():
            process = component.process
            pid = process.pid()
            if component.name in optional and pid is None:
                continue  # a replica neither configured nor started: not part of this node
            result[component.name] = ComponentStatus(
                name=component.name,
                kind=component.kind,
                endpoints=dict(process.endpoints),
                pid=pid,
                running=pid is not None,
                healthy=pid is not None and process.is_ready(),
                log=str(process.log_path),
            )
        return result

    def is_healthy(self, names: Iterable[str] = INFRASTRUCTURE) -> bool:
        return all(self._component(name).process.is_healthy() for name in names)

    # -- internals ------------------------------------------------------------------------------------------

    def _component(self, name: str) -> Component:
        try:
            return self._components[name]
        except KeyError:
            raise KeyError(f"unknown component {name!r}; expected one of {', '.join(self._components)}") from None

    def _lock(self) -> Any:
        return file_lock(self.state_dir / ".lock")

    def _prepare_state(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        configs.logs_dir(self.settings).mkdir(parents=True, exist_ok=True)
        (self.state_dir / "run").mkdir(exist_ok=True)
        ensure_secrets(self.settings)
        header = (f"Settings of the operator's eucaim-node CLI for stack profile '{self.settings.name}'.\n"
                  "Generated by `eucaim-node stack up`; each service gets its own environment, not this file.")
        configs.write_if_changed(self.node_env_file(), configs.format_env_file(self.node_env(), header))

    def _start_group(self, names: Iterable[str]) -> None:
        pending: list[Component] = []
        for name in names:
            component = self._component(name)
            if component.process.is_healthy():
                continue
            started = time.monotonic()
            before = dict(install.INSTALL_TIMINGS)
            component.prepare()
            for key, value in install.INSTALL_TIMINGS.items():
                if before.get(key) != value:
                    self.timings[f"install:{key}"] = value
            self.timings[f"prepare:{name}"] = time.monotonic() - started
            pending.append(component)
        spawned: dict[str, float] = {}
        pids: dict[str, int] = {}
        for component in pending:
            spawned[component.name] = time.monotonic()
            pids[component.name] = component.process.spawn()

        def wait(component: Component) -> None:
            component.process.wait_ready(pid=pids[component.name])
            self.timings[f"start:{component.name}"] = time.monotonic() - spawned[component.name]

        if pending:
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(pending)) as pool:
                futures = [pool.submit(wait, component) for component in pending]
                errors = [f.exception() for f in futures if f.exception() is not None]
            if errors:
                raise errors[0]  # type: ignore[misc]
        for name in names:
            self._component(name).after_ready()

    def _stop_group(self, names: tuple[str, ...]) -> list[str]:
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(names)) as pool:
            results = list(pool.map(lambda n: (n, self._component(n).process.stop()), names))
        return [name for name, stopped in results if stopped]

    # -- component definitions ------------------------------------------------------------------------------

    def _managed(self, name: str, command: list[str], ready: Callable[[], bool], *, ports: Iterable[int],
                 endpoints: dict[str, str], timeout: float, env: dict[str, str] | None = None,
                 cwd: Path | None = None, adopt_orphans: bool = True,
                 scrub_env: frozenset[str] = frozenset()) -> ManagedProcess:
        s = self.settings
        return ManagedProcess(
            name=name,
            command=command,
            log_path=configs.logs_dir(s) / f"{name}.log",
            pid_path=s.state / "run" / f"{name}.pid",
            ready=ready,
            env=env or {},
            cwd=cwd,
            start_timeout=timeout,
            stop_timeout=s.stop_timeout,
            ports=tuple(ports),
            host=s.host,
            endpoints=endpoints,
            adopt_orphans=adopt_orphans,
            scrub_env=scrub_env,
        )

    def _build_components(self) -> list[Component]:
        return [self._kafka(), self._ferretdb(), self._orthanc("clinical"), self._orthanc("research"), self._witness(),
                *(self._service(name) for name in SERVICES), *(self._service(name, 2) for name in SCALABLE)]

    def _kafka(self) -> Component:
        s = self.settings
        home = s.state / "kafka"
        properties = home / "server.properties"
        log4j = home / "log4j2.properties"
        data = home / "data"
        libs = install.kafka_libs_dir(s)
        process = self._managed(
            "kafka",
            configs.kafka_command(s, libs, properties, log4j),
            lambda: probes.kafka_ready(self.kafka_client_options()),
            ports=(s.kafka_port, s.kafka_controller_port),
            endpoints={"bootstrap": self.kafka_bootstrap(), "controller": f"{s.host}:{s.kafka_controller_port}"},
            timeout=s.kafka_start_timeout,
            cwd=home,
        )

        def prepare() -> None:
            install.ensure_kafka(s)
            home.mkdir(parents=True, exist_ok=True)
            os.chmod(home, 0o700)
            configs.write_if_changed(properties, configs.render_kafka_properties(
                s, data, kafka_security.broker_security(s)), mode=0o600)
            configs.write_if_changed(log4j, (configs.deploy_dir() / "kafka" / "log4j2.properties").read_text())
            if not (data / "meta.properties").is_file():
                self._format_kafka(libs, properties, log4j, process)
            elif not (home / SCRAM_BOOTSTRAPPED).is_file():
                raise process.failed(f"the Kafka storage in {data} predates SASL (no SCRAM users); "
                                     f"run `eucaim-node stack reset` for profile {s.name!r} (decision 0060)")

        def provision() -> None:
            self._provision_kafka(libs, log4j, process)

        return Component("kafka", "infrastructure", process, prepare, provision)

    def _java(self, libs: Path, log4j: Path, arguments: list[str], process: ManagedProcess, what: str,
              class_path: Path | None = None) -> None:
        """Run a Java tool with the Kafka jars, its arguments in a private @argfile (secrets stay out of ps)."""
        argfile = kafka_security.kafka_secrets_dir(self.settings) / f".java-{os.getpid()}.args"
        jars = f"{libs}/*" if class_path is None else f"{libs}/*{os.pathsep}{class_path}"
        command = ["-Xmx256m", f"-Dlog4j2.configurationFile={log4j}", "-Dkafka.root.level=WARN",
                   "-cp", jars, *arguments]
        configs.write_private(argfile, "\n".join(f'"{a}"' for a in command) + "\n")
        process.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with process.log_path.open("ab") as log_file:
                log_file.write(f"\n=== {what}: java {' '.join(command[:5])} {arguments[0]} ...\n".encode())
                log_file.flush()
                done = subprocess.run(["java", f"@{argfile}"], stdout=log_file, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, timeout=180)
        finally:
            argfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise process.failed(f"{what} failed with exit code {done.returncode}")

    def _format_kafka(self, libs: Path, properties: Path, log4j: Path, process: ManagedProcess) -> None:
        self._java(libs, log4j, ["kafka.tools.StorageTool", "format", "-t", configs.new_kafka_cluster_id(),
                                 "-c", str(properties), *kafka_security.format_scram_arguments(self.settings)],
                   process, "formatting KRaft storage with the super user's SCRAM credential")
        (properties.parent / SCRAM_BOOTSTRAPPED).write_text("SCRAM-SHA-512 super user added at format\n")

    def _provision_kafka(self, libs: Path, log4j: Path, process: ManagedProcess) -> None:
        """Topics, SCRAM users and ACLs from the grant matrix, applied as the super user (decision 0060)."""
        directory = kafka_security.kafka_secrets_dir(self.settings)
        client, spec = directory / ".provision.properties", directory / ".provision.spec"
        configs.write_private(client, kafka_security.java_client_properties(self.settings))
        configs.write_private(spec, kafka_security.provisioning_spec(self.settings))
        try:
            class_path, main = install.kafka_provisioner(self.settings)
            self._java(libs, log4j, [main, str(client), str(spec)], process,
                       "provisioning topics, SCRAM users and ACLs", class_path)
        finally:
            client.unlink(missing_ok=True)

    def _ferretdb(self) -> Component:
        s = self.settings
        home = s.state / "ferretdb"
        secrets = configs.secrets_dir(s)
        certificate = tls.server_files(secrets, "ferretdb")
        admin = configs.mongo_username(configs.MONGO_ADMIN)
        process = self._managed(
            "ferretdb", ferretdb.ferretdb_command(s, install.ferretdb_binary(s), home, certificate, admin),
            lambda: probes.mongo_ready(self.mongo_url(), **self.mongo_options()),
            ports=(s.ferretdb_port,), endpoints={"mongo": self.mongo_url()}, timeout=s.ferretdb_start_timeout, cwd=home,
        )

        def prepare() -> None:
            install.ensure_ferretdb(s)
            (home / "data").mkdir(parents=True, exist_ok=True)
            ca = tls.ensure_ca(secrets)
            tls.ensure_server_certificate(secrets, "ferretdb", (s.host,), ca)
            # The first user's password: in the environment, never on the command line (ps shows that).
            process.env = {"FERRETDB_TELEMETRY": "disable", "DO_NOT_TRACK": "1",
                           "FERRETDB_SETUP_PASSWORD": read_mongo_password(s, configs.MONGO_ADMIN)}

        def provision_users() -> None:
            passwords = {configs.mongo_username(p): read_mongo_password(s, p) for p in PRINCIPALS}
            client = self.mongo_client()
            try:
                created = ferretdb.provision_users(client, passwords)
            finally:
                client.close()
            if created:
                log.info("created MongoDB users %s", ", ".join(created))

        return Component("ferretdb", "infrastructure", process, prepare, provision_users)

    def _orthanc(self, instance: str) -> Component:
        s = self.settings
        name = f"orthanc-{instance}"
        home = configs.orthanc_dir(s, instance)
        config_path = home / "orthanc.json"
        url = configs.orthanc_url(s, instance)
        host, dicom_port, aet = self.orthanc_dicom(instance)
        dicom = configs.orthanc_dicom_security(instance, s.clinical_modalities)["DicomServerEnabled"]
        process = self._managed(
            name,
            [str(install.ORTHANC_BINARY), str(config_path)],
            lambda: probes.http_ok(f"{url}/system", auth=self.orthanc_auth(instance)),
            ports=(configs.orthanc_http_port(s, instance), *((dicom_port,) if dicom else ())),
            endpoints={"http": url, **({"dicom": f"{aet}@{host}:{dicom_port}"} if dicom else {}),
                       "dicomweb": f"{url}/dicom-web/"},
            timeout=s.orthanc_start_timeout,
            cwd=home,
        )

        def prepare() -> None:
            install.ensure_debian_packages(name)
            for sub in ("storage", "index"):
                (home / sub).mkdir(parents=True, exist_ok=True)
            os.chmod(home, 0o700)
            config = configs.render_orthanc_config(s, instance, read_orthanc_password(s, instance))
            configs.write_if_changed(config_path, json.dumps(config, indent=2) + "\n", mode=0o600)

        return Component(name, "infrastructure", process, prepare)

    def _witness(self) -> Component:
        s = self.settings
        url = configs.witness_url(s)
        process = self._managed(
            "witness",
            [sys.executable, "-m", "eucaim_node.witness"],
            lambda: probes.http_ok(f"{url}/health/ready"),
            ports=(s.witness_port,),
            endpoints={"http": url, "add-checkpoint": f"{url}/add-checkpoint", "checkpoint": f"{url}/checkpoint"},
            timeout=s.service_start_timeout,
            env={**configs.render_witness_env(s), "PYTHONUNBUFFERED": "1"},
            cwd=s.state,
            adopt_orphans=False,
            scrub_env=configs.stack_env_names(s),  # another party: none of the node's settings from the shell
        )
        return Component("witness", "infrastructure", process)

    def _service(self, service: str, replica: int = 1) -> Component:
        s = self.settings
        port = s.health_port(service) + (replica - 1) * REPLICA_PORT_OFFSET
        ready_url = f"http://{s.host}:{port}/health/ready"
        name = replica_name(service, replica)
        process = self._managed(
            name,
            [sys.executable, "-m", f"eucaim_node.{service}"],
            lambda: probes.http_ok(ready_url),
            ports=(port,),
            endpoints={"health": ready_url},
            timeout=s.service_start_timeout,
            env={**self.service_env(service), "EUCAIM_HEALTH_PORT": str(port), "PYTHONUNBUFFERED": "1"},
            cwd=s.state,
            adopt_orphans=False,  # the same command line serves every profile: never adopt by command line
            # A variable the stack sets for any service is the stack's alone: one left in the shell (say the
            # clinical Orthanc's password file) reaches no service that the stack does not give it to. Other
            # EUCAIM_* settings (collections file, log level) still pass from the shell, for the operator.
            scrub_env=configs.stack_env_names(s),
        )
        return Component(name, "service", process)


def _contains(path: Path, other: Path) -> bool:
    """True if ``other`` is ``path`` or lies inside it."""
    try:
        other.resolve().relative_to(path.resolve())
        return True
    except ValueError:
        return False
