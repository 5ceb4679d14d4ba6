"""Materialiser: the Tier 3 datasets' one writer (decision 0080).

Consumes ``DatasetCommand`` (the operator's define / release / publish / invalidate / reactivate / grant / revoke /
delete, sent by ``eucaim-node dataset``) and applies each once; consumes ``WithdrawalRequested`` and invalidates
every dataset version holding the subject, removes its files and creates a successor draft without them. A
background worker materialises pending datasets from the research Orthanc into the dataset root (and resumes an
interrupted one at start). Every act is recorded on ``eucaim.access.v1`` with the EUCAIM action names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

from faststream import Context
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaRouter

from eucaim_node.datasets import MongoDatasetStore
from eucaim_node.datasets.layout import DatasetRoot
from eucaim_node.events import (
    AccessRecorded,
    DatasetCommand,
    WithdrawalRequested,
    consumer_group,
    dead_letter_topic,
    grant,
)
from eucaim_node.orthanc import OrthancClient
from eucaim_node.runtime import CONSUMER_ACK_POLICY, EventPublisher, build_app, create_broker, ensure_topics
from eucaim_node.store import connect, ping

from .adapters.mongo import CatalogueClinicalData, MongoOutcomes
from .adapters.research import ResearchOrthancSource
from .config import MaterialiserSettings
from .core.commands import CommandApplier
from .core.materialise import Materialiser
from .core.withdrawal import WithdrawalHandler

NAME = "materialiser"
GROUP = consumer_group(NAME)
log = logging.getLogger("eucaim_node.materialiser")

router = KafkaRouter()
publish_access = EventPublisher(router, AccessRecorded)


@router.subscriber(DatasetCommand.TOPIC, group_id=GROUP, ack_policy=CONSUMER_ACK_POLICY, auto_offset_reset="earliest",
                   description="Apply an operator's dataset command once and record its outcome.")
async def on_dataset_command(event: DatasetCommand, applier: Annotated[CommandApplier, Context("applier")]) -> None:
    await applier.apply(event)


@router.subscriber(WithdrawalRequested.TOPIC, group_id=GROUP, ack_policy=CONSUMER_ACK_POLICY,
                   auto_offset_reset="earliest",
                   description="Invalidate the withdrawn subject's dataset versions, remove their files, create successors.")
async def on_withdrawal_invalidate_datasets(event: WithdrawalRequested,
                                            withdrawals: Annotated[WithdrawalHandler, Context("withdrawals")]) -> None:
    await withdrawals.withdraw(event)


class Worker:
    """Runs :meth:`Materialiser.run_once` when woken (a command) or every ``interval`` seconds; a failure (say the
    research Orthanc is down) is logged and retried on the next pass, the dataset staying ``running``."""

    def __init__(self, materialiser: Materialiser, interval: float) -> None:
        self.materialiser, self.interval = materialiser, interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="materialiser-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.materialiser.run_once()
            except Exception as exc:
                log.warning("materialisation pass failed; retrying", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)


def create_app(settings: MaterialiserSettings) -> AsgiFastStream:
    broker = create_broker(settings, service=NAME, dead_letter_topic=dead_letter_topic(GROUP))
    broker.include_router(router)
    mongo, db = connect(settings, app_name=NAME)
    research = OrthancClient(settings.research_orthanc())
    store = MongoDatasetStore(db)
    root = DatasetRoot(settings.dataset_root)
    materialiser = Materialiser(store, ResearchOrthancSource(research), CatalogueClinicalData(db), root,
                                publish_access, concurrency=settings.dataset_download_concurrency,
                                series_archives=settings.dataset_series_archives)
    worker = Worker(materialiser, settings.dataset_poll_seconds)
    applier = CommandApplier(store, MongoOutcomes(db), publish_access, wake=worker.wake)
    withdrawals = WithdrawalHandler(store, materialiser, publish_access, wake=worker.wake)

    async def start() -> None:
        settings.dataset_root.mkdir(parents=True, exist_ok=True)
        await ensure_topics(settings, grant(NAME).topics)

    async def after_start() -> None:
        worker.start()

    async def stop() -> None:
        await worker.stop()
        await mongo.close()

    app = build_app(broker, checks=[("mongodb", lambda: ping(db)), ("research_orthanc", research.system)],
                    on_startup=[start], after_startup=[after_start], on_shutdown=[stop])
    app.context.set_global("applier", applier)
    app.context.set_global("withdrawals", withdrawals)
    return app
