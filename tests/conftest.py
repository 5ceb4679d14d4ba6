from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from eucaim_node.cli.walkthrough import NodeObserver
from eucaim_node.events import DOMAIN_TOPICS

CONSUMER_GROUPS = ("anonymisation", "metadata", "catalogue-sync", "audit")


@pytest.fixture(scope="session")
def observer(stack):
    observer = NodeObserver(stack)
    yield observer
    observer.close()


#: aiokafka connection options (bootstrap, SASL_SSL, the stack's super user): ``Stack.kafka_client_options()``.
Options = dict[str, Any]


async def _partitions(options: Options, topics: tuple[str, ...]) -> list[TopicPartition]:
    if not topics:
        return []
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]


async def read_topics(options: Options, topics: tuple[str, ...]) -> list[tuple[str, dict[str, str], bytes]]:
    """Every message currently on ``topics``: (topic, headers, value), read with a throwaway group."""
    consumer = AIOKafkaConsumer(**options, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    partitions = await _partitions(options, topics)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        messages = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for r in records:
                    headers = {k: v.decode(errors="replace") for k, v in (r.headers or ())}
                    messages.append((r.topic, headers, r.value))
        return messages
    finally:
        # aiokafka 0.14: stopping a group-less consumer can surface the cancellation of its
        # internal "reset committed" task; the consumer is closed all the same.
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()


async def domain_events(options: Options) -> list[dict[str, Any]]:
    return [json.loads(value) for _, _, value in await read_topics(options, DOMAIN_TOPICS)]


async def total_lag(options: Options) -> int:
    """Messages not yet processed (committed) by the node's consumer groups, over every topic."""
    admin = AIOKafkaAdminClient(**options)
    consumer = AIOKafkaConsumer(**options, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        lag = 0
        for group in CONSUMER_GROUPS:
            committed = await admin.list_consumer_group_offsets(group)
            partitions = await _partitions(options, tuple({tp.topic for tp in committed}))
            if not partitions:
                continue
            end = await consumer.end_offsets(partitions)
            lag += sum(end[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
                       for tp in partitions)
        return lag
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()
        await admin.close()


async def wait_until_idle(options: Options, timeout: float = 120.0, settle: float = 3.0) -> None:
    """Wait until every consumer group has processed everything, and it stays so for ``settle`` s."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        try:
            lag = await total_lag(options)
        except KafkaError:  # e.g. a fresh Kafka still electing the group coordinator
            lag = None
        if lag == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                return
        else:
            quiet_since = None
        await asyncio.sleep(0.5)
    raise AssertionError(f"the node still has unprocessed events after {timeout} s")


class KafkaProbe:
    """Reads the node's topics and consumer lag (for tests that must know when the node is idle)."""

    def __init__(self, options: Options) -> None:
        self.options = options

    async def read(self, *topics: str):
        return await read_topics(self.options, topics)

    async def domain_events(self):
        return await domain_events(self.options)

    async def wait_until_idle(self, timeout: float = 120.0):
        await wait_until_idle(self.options, timeout)


@pytest.fixture(scope="session")
def kafka(stack) -> KafkaProbe:
    """Reads as the stack's super user (the tests observe every topic and group)."""
    return KafkaProbe(stack.kafka_client_options())


@pytest.fixture
def unique_seed() -> str:
    return f"e2e-{uuid.uuid4().hex[:8]}"
