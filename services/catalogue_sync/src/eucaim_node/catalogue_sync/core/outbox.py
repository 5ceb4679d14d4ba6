"""Deliver published dataset versions to the remote catalogue: durable, retried with backoff, restart-safe.

The outbox is the version documents themselves (``delivery`` state). A worker loop claims due
entries with a lease (so two catalogue-sync replicas never push the same entry at once, and a
crashed worker's lease simply expires), hands the Turtle description to the remote catalogue
(``ports.RemoteCatalogue``; the HTTP PUT is ``adapters/remote_catalogue.py``), and records the
outcome. Failures (connection errors, timeouts, any non-2xx answer) are retried with
exponential backoff and jitter, capped, without limit: a publication survives restarts of
catalogue-sync and outages of the remote. Only the newest version of a collection is delivered; an
older pending one is marked ``superseded``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from eucaim_node.events import CollectionDelivered, Event
from eucaim_node.runtime.backoff import backoff_delay

from ..ports import RemoteCatalogue, VersionOutbox

log = logging.getLogger("eucaim_node.catalogue_sync.outbox")
PRODUCER = "catalogue-sync"


class OutboxWorker:
    def __init__(self, versions: VersionOutbox, remote: RemoteCatalogue, publish: Callable[[Event], Awaitable[None]], *,
                 backoff: float, backoff_max: float, lease_seconds: float = 60.0, poll_seconds: float = 1.0) -> None:
        """``lease_seconds``: how long a claimed entry is ours; longer than one push can take (the remote's timeout)."""
        self._versions = versions
        self._remote = remote
        self._publish = publish
        self._backoff = backoff
        self._backoff_max = backoff_max
        self._lease = timedelta(seconds=lease_seconds)
        self._poll = poll_seconds
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="catalogue-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._remote.close()

    def delay(self, attempts: int) -> float:
        return backoff_delay(attempts, first=self._backoff, cap=self._backoff_max, jitter=0.2)

    async def _run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # MongoDB or Kafka down: try again at the next tick
                log.warning("outbox pass failed", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            await asyncio.sleep(self._poll)

    async def deliver_due(self) -> int:
        delivered = 0
        now = datetime.now(UTC)
        for entry in await self._versions.due(now):
            if await self._versions.newer_than(entry["collection_id"], entry["version"]):
                await self._versions.settle(entry["_id"], {"status": "superseded"})
                continue
            claimed = await self._versions.claim(entry["_id"], now, now + self._lease)
            if claimed is None:
                continue
            delivered += await self._deliver(claimed)
        return delivered

    async def _deliver(self, entry: dict[str, Any]) -> int:
        full = await self._versions.get(entry["collection_id"], entry["version"])
        attempts = entry["delivery"]["attempts"] + 1
        outcome = await self._remote.put(entry["collection_id"], full["turtle"], idempotency_key=entry["_id"],
                                         version_label=entry["version_label"])
        status, error, host = outcome.status, outcome.error, outcome.remote
        now = datetime.now(UTC)
        if error is None:
            await self._versions.settle(entry["_id"], {"status": "delivered", "attempts": attempts, "delivered_at": now,
                                                       "http_status": status, "last_error": None})
            await self._publish(CollectionDelivered.create(
                cause=entry["_id"], producer=PRODUCER, collection_id=entry["collection_id"], version=entry["version"], attempts=attempts,
                http_status=status))
            log.info("dataset version delivered", extra={"collection_id": entry["collection_id"],
                                                         "version": entry["version"], "attempts": attempts, "remote": host})
            return 1
        wait = self.delay(attempts)
        await self._versions.settle(entry["_id"], {"attempts": attempts, "last_error": error, "http_status": status,
                                                   "next_attempt_at": now + timedelta(seconds=wait),
                                                   "lease_until": datetime.fromtimestamp(0, UTC)})
        log.warning("dataset version not delivered, will retry",
                    extra={"collection_id": entry["collection_id"], "version": entry["version"], "attempts": attempts,
                           "error": error, "retry_in_s": round(wait, 1), "remote": host})
        return 0
