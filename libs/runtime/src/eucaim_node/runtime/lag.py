"""Consumer lag of a service's consumer groups, measured from Kafka when ``/metrics`` is read.

Lag is what Kafka knows, not what this process believes: the group's committed offsets (the admin
API) against the partitions' end offsets. So every replica reports the lag of the whole group,
including partitions no replica is assigned (dashboards take ``max`` over replicas), and a stuck or
crashed consumer shows as growing lag rather than as a missing series. A partition the group never
committed counts from its first offset (``auto_offset_reset=earliest``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from eucaim_node.telemetry import metrics

from .settings import KafkaSettings

log = logging.getLogger("eucaim_node.lag")


class ConsumerLagProbe:
    def __init__(self, settings: KafkaSettings, service: str, groups: dict[str, tuple[str, ...]], *,
                 min_interval: float = 5.0, timeout: float = 5.0) -> None:
        self._settings = settings
        self._service = service
        self._groups = groups
        self._min_interval = min_interval
        self._timeout = timeout
        self._measured_at = float("-inf")
        self._lock = asyncio.Lock()
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def refresh(self) -> None:
        """Measure unless measured less than ``min_interval`` ago; failures keep the last values."""
        if not self._groups:
            return
        async with self._lock:
            if time.monotonic() - self._measured_at < self._min_interval:
                return
            try:
                lags = await asyncio.wait_for(self.measure(), self._timeout)
            except Exception as exc:  # Kafka down or slow: the readiness probe tells; keep the old values
                metrics.CONSUMER_LAG_ERRORS.labels(self._service).inc()
                log.warning("could not measure consumer lag", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
                await self.close()
                return
            for (group, topic), lag in lags.items():
                metrics.CONSUMER_LAG.labels(self._service, group, topic).set(lag)
            self._measured_at = time.monotonic()

    async def measure(self) -> dict[tuple[str, str], int]:
        admin, consumer = await self._clients()
        result: dict[tuple[str, str], int] = {}
        for group, topics in self._groups.items():
            partitions = [TopicPartition(t, p) for t in topics for p in sorted(await _partitions(consumer, t))]
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            end = await consumer.end_offsets(partitions)
            start = await consumer.beginning_offsets(partitions)
            for topic in topics:
                result[(group, topic)] = sum(
                    max(end[tp] - _committed_offset(committed.get(tp), start[tp]), 0)
                    for tp in partitions if tp.topic == topic)
        return result

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            options = self._settings.kafka_client_options()
            admin = AIOKafkaAdminClient(**options, client_id=f"eucaim-node-{self._service}-lag")
            consumer = AIOKafkaConsumer(**options, client_id=f"eucaim-node-{self._service}-lag",
                                        group_id=None, enable_auto_commit=False)
            await admin.start()
            await consumer.start()
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def close(self) -> None:
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        if consumer is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await consumer.stop()
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> Iterable[int]:
    found = consumer.partitions_for_topic(topic)
    if not found:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
        found = consumer.partitions_for_topic(topic)
    return found or ()


def _committed_offset(committed, start: int) -> int:
    offset = getattr(committed, "offset", -1)
    return offset if offset is not None and offset >= 0 else start
