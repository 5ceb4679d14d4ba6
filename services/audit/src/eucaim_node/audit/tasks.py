"""Background work of the audit service besides consuming: signing tree heads, forwarding to syslog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from eucaim_node.ledger.export import dicom_audit_message
from eucaim_node.ledger.syslog import SyslogTlsSender, format_message
from eucaim_node.runtime import is_transient

from eucaim_node.ledger.store import LedgerInconsistent, LedgerStore

log = logging.getLogger("eucaim_node.audit")

SYSLOG_CURSOR = "syslog-forwarder"


async def _every(interval: float, step: Callable[[], Awaitable[float | None]], name: str) -> None:
    """Run ``step`` forever; it returns the delay before the next run (None: ``interval``)."""
    failures = 0
    while True:
        try:
            delay = await step()
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            delay = min(interval, 2.0 ** min(failures, 6) * 0.25)
            level = logging.WARNING if is_transient(exc) else logging.ERROR
            log.log(level, f"{name} failed, will retry", extra={"error": f"{type(exc).__name__}: {exc}"[:300],
                                                                 "retry_in_s": delay})
        await asyncio.sleep(interval if delay is None else delay)


class HeadSigner:
    def __init__(self, store: LedgerStore, key: Ed25519PrivateKey, origin: str, interval: float) -> None:
        self.store, self.key, self.origin, self.interval = store, key, origin, interval

    async def step(self) -> None:
        try:
            head = await self.store.sign_head(self.key, self.origin, datetime.now(UTC))
        except LedgerInconsistent as exc:
            log.error("tree head NOT signed: the ledger is inconsistent", extra={"error": str(exc)})
            return None
        if head is not None:
            log.info("tree head signed", extra={"tree_size": head["_id"], "root": head["root"]})
        return None

    async def run(self) -> None:
        await _every(self.interval, self.step, "tree head signing")


class SyslogForwarder:
    """Sends every record, in leaf order, as a DICOM audit message; the cursor advances after a successful send
    (at least once: after a crash the last batch may be sent again)."""

    def __init__(self, store: LedgerStore, sender: SyslogTlsSender, origin: str, *, batch: int = 200,
                 idle: float = 1.0) -> None:
        self.store, self.sender, self.origin = store, sender, origin
        self.batch, self.idle = batch, idle
        self.hostname = socket.gethostname()

    async def step(self) -> float:
        start = await self.store.get_cursor(SYSLOG_CURSOR)
        records = [r async for r in self.store.records_from(start, limit=self.batch)]
        contiguous = []
        for record in records:
            if int(record["leaf_index"]) != start + len(contiguous):
                break
            contiguous.append(record)
        if not contiguous:
            return self.idle
        messages = [format_message(dicom_audit_message(r, origin=self.origin), at=r["recorded_at"], hostname=self.hostname)
                    for r in contiguous]
        await self.sender.send(messages)
        await self.store.set_cursor(SYSLOG_CURSOR, start + len(contiguous))
        log.info("audit messages forwarded", extra={"count": len(contiguous), "next_leaf": start + len(contiguous)})
        return 0.0 if len(contiguous) == self.batch else self.idle

    async def run(self) -> None:
        try:
            await _every(self.idle, self.step, "syslog forwarding")
        finally:
            await self.sender.close()


class Background:
    """Tasks started after the broker and stopped before the database client closes."""

    def __init__(self) -> None:
        self.factories: list[Callable[[], Awaitable[None]]] = []
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(f()) for f in self.factories]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks = []
