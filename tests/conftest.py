from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from eucaim_node.cli.walkthrough import NodeObserver
from eucaim_node.events import CONSUMER_GROUPS as GROUP_OF, DOMAIN_TOPICS, OPERATOR

#: The services' consumer groups (the operator's replay group is no service's: its lag is not the node's work).
CONSUMER_GROUPS = tuple(group for principal, group in GROUP_OF.items() if principal != OPERATOR)


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


CLI = str(Path(sys.executable).parent / "eucaim-node")


class AuditNode:
    """The stack's audit service, run by a test with extra settings (e.g. a 1 s head interval), and its CLI.

    It signs with the stack's key and origin, so the stack's witness knows its log."""

    def __init__(self, stack, workdir: Path, extra: dict[str, str]) -> None:
        self.stack, self.extra = stack, extra
        node_env = stack.node_env()
        self.origin = node_env["EUCAIM_AUDIT_LOG_ORIGIN"]
        self.key_file = Path(node_env["EUCAIM_AUDIT_SIGNING_KEY_FILE"])
        self.env_file = stack.node_env_file()
        self.log = workdir / "audit.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, **self.stack.service_env("audit"), **self.extra, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "eucaim_node.audit"], env=env,
                                        stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{self.stack.settings.health_port('audit')}/health/ready"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("the audit service did not become ready:\n" + self.log.read_text()[-3000:])

    @staticmethod
    def wait_for(predicate, timeout: float = 90.0, what: str = "condition"):
        """The first truthy value of ``predicate()``, polled until ``timeout`` (then the test fails naming ``what``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(60)
        self.process = None

    def cli(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
        result = subprocess.run([CLI, "audit", *args, "--env-file", str(self.env_file)] if args[0] != "check-proof"
                                else [CLI, "audit", *args], capture_output=True, text=True, timeout=300)
        if expect is not None:
            assert result.returncode == expect, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result


@pytest.fixture(scope="session")
def audit_node():
    """The :class:`AuditNode` class (module fixtures make their own, with their settings)."""
    return AuditNode
