"""Cheap readiness probes; each returns True when the component serves and raises or returns False otherwise."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pymongo

from .process import port_is_open


def _run_async(factory: Callable[[], Coroutine[Any, Any, bool]], timeout: float) -> bool:
    """Run a coroutine to completion in a private thread (works whether or not the caller has a running loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, asyncio.wait_for(factory(), timeout)).result(timeout + 1)  # type: ignore[arg-type]


def kafka_ready(options: dict[str, Any], timeout: float = 5.0) -> bool:
    """True once the broker answers a metadata request and reports a controller (KRaft quorum is up).

    ``options`` are aiokafka connection options (Stack.kafka_client_options): the probe authenticates.
    """
    from aiokafka.admin import AIOKafkaAdminClient

    host, _, port = str(options["bootstrap_servers"]).rpartition(":")
    if not port_is_open(host, int(port)):  # avoid aiokafka's connection-error log lines while Kafka starts
        return False

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(**options, request_timeout_ms=int(timeout * 1000))
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
        finally:
            await admin.close()
        return bool(cluster.get("brokers")) and cluster.get("controller_id", -1) >= 0

    return _run_async(probe, timeout)


def mongo_ready(url: str, timeout: float = 2.0, **options: Any) -> bool:
    """True once a MongoDB-compatible server lets the client of ``options`` (TLS, user) list its users.

    Not ``ping``: FerretDB answers that before authentication, and the stack needs the admin user to work.
    """
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        url, serverSelectionTimeoutMS=int(timeout * 1000), connectTimeoutMS=int(timeout * 1000), **options
    )
    try:
        return float(client.admin.command("usersInfo").get("ok", 0)) == 1.0
    finally:
        client.close()


def http_ok(url: str, auth: tuple[str, str] | None = None, timeout: float = 2.0) -> bool:
    """True if GET ``url`` answers 200."""
    return httpx.get(url, auth=auth, timeout=timeout).status_code == 200
