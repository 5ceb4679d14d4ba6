"""The job service: a Jobman-compatible API that runs allowed tools next to granted datasets (EUCAIM Tier 3).

Publishes ``AccessRecorded`` events (the audit service appends them to the ledger) and consumes nothing. Its HTTP
server (the health port) serves the Jobman API and the review API (``adapters/inbound/http.py``; decision 0085).
"""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any

from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaRouter

from eucaim_node.events import AccessRecorded, grant
from eucaim_node.runtime import EventPublisher, build_app, create_broker, ensure_topics
from eucaim_node.store import connect, ping

from .adapters.inbound.http import JOBMAN_PREFIX, REVIEW_PREFIX, JobmanApi, ReviewApi
from .adapters.outbound.store import MongoJobStore
from .config import JobsSettings
from .core.catalogue import Tool, load_flavours, load_tools
from .core.jobs import JobService
from .ports import Runner

NAME = "jobs"
log = logging.getLogger("eucaim_node.jobs")

router = KafkaRouter()
publish_access = EventPublisher(router, AccessRecorded)


async def record(*, actor: str, action: str, target: str | None, outcome: str, detail: dict[str, Any]) -> None:
    """One ledger record; its cause is unique (each check, start and decision is a fact of its own)."""
    await publish_access(AccessRecorded.create(cause=f"jobs:{action}:{uuid.uuid4()}", producer=NAME, actor=actor,
                                               action=action, target=target, outcome=outcome, detail=detail))


def build_runner(settings: JobsSettings, tools: dict[str, Tool]) -> Runner:
    if settings.jobs_runner == "kubernetes":
        from .adapters.outbound.kubernetes import KubernetesRunner, KubernetesSettings

        runner = KubernetesRunner(KubernetesSettings())
        runner.check_tools(tools)
        return runner
    from .adapters.outbound.local_runner import IsolationUnavailable, LocalRunner, LocalRunnerSettings, probe_isolation

    if not settings.jobs_local_insecure_no_isolation:
        try:
            probe_isolation()
        except IsolationUnavailable as exc:
            raise ValueError(f"EUCAIM_JOBS_RUNNER=local: {exc} (EUCAIM_JOBS_LOCAL_INSECURE_NO_ISOLATION=true runs "
                             "jobs without isolation: never with real data)") from None
    return LocalRunner(LocalRunnerSettings(mount_root=settings.jobs_local_mount_root,
                                           hide_paths=settings.hide_paths()),
                       isolated=not settings.jobs_local_insecure_no_isolation)


def create_app(settings: JobsSettings) -> AsgiFastStream:
    from eucaim_node.datasets import MongoDatasetStore

    from .adapters.outbound.datasets import LibraryDatasetAccess

    tools = load_tools(settings.jobs_tools_file, local=settings.jobs_runner == "local")
    flavours, default_flavour = load_flavours(settings.jobs_flavours_file)
    runner = build_runner(settings, tools)
    broker = create_broker(settings, service=NAME, dead_letter_topic=None)  # publishes only
    broker.include_router(router)
    mongo, db = connect(settings, app_name=NAME)
    store = MongoJobStore(db)
    settings.jobs_work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    service = JobService(store=store, datasets=LibraryDatasetAccess(MongoDatasetStore(db), settings.dataset_root),
                         runner=runner, record=record, tools=tools, flavours=flavours,
                         default_flavour=default_flavour, work_dir=settings.jobs_work_dir,
                         rules=settings.review_rules(), limits=settings.limits(), server_name=socket.gethostname())
    mounts = [(JOBMAN_PREFIX, JobmanApi(service, settings.client_tokens())),
              (REVIEW_PREFIX, ReviewApi(service, settings.review_tokens()))]

    async def start() -> None:
        await ensure_topics(settings, grant(NAME).topics)
        await store.ensure_indexes()

    async def after_start() -> None:
        await service.recover()

    async def stop() -> None:
        await service.stop()
        await mongo.close()

    return build_app(broker, checks=[("mongodb", lambda: ping(db))], mounts=mounts, on_startup=[start],
                     after_startup=[after_start], on_shutdown=[stop])
