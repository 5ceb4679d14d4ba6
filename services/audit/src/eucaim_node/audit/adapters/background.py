"""Background work of the audit service besides consuming: signing tree heads, getting them cosigned by the
witness, forwarding records and heads to syslog."""

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
from eucaim_node.ledger.witness_client import WitnessError, WitnessUnavailable
from eucaim_node.ledger.witnessing import CheckpointRejected, WitnessRolledBack, WitnessSubmitter
from eucaim_node.runtime import backoff_delay, is_transient
from eucaim_node.telemetry.metrics import (
    AUDIT_TREE_NODE_MISMATCHES,
    AUDIT_TREE_NODES_REPAIRED,
    AUDIT_WITNESS_FAILURES,
    AUDIT_WITNESS_PENDING_LEAVES,
)

from eucaim_node.ledger.store import LedgerInconsistent, LedgerStore, TreeNodeIndex, TreeNodesMismatch

log = logging.getLogger("eucaim_node.audit")

SYSLOG_CURSOR = "syslog-forwarder"
SYSLOG_HEADS_CURSOR = "syslog-forwarder-heads"
SYSLOG_COSIGNED_CURSOR = "syslog-forwarder-cosigned"
#: RFC 5424 MSGIDs of the forwarded tree heads: as signed by the node, and with the witness's cosignature.
MSGID_HEAD = "EUCAIM+TREE-HEAD"
MSGID_COSIGNED_HEAD = "EUCAIM+COSIGNED-HEAD"
SERVICE = "audit"


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
            delay = backoff_delay(failures, first=0.5, cap=min(interval, 16.0))
            level = logging.WARNING if is_transient(exc) else logging.ERROR
            log.log(level, f"{name} failed, will retry", extra={"error": f"{type(exc).__name__}: {exc}"[:300],
                                                                 "retry_in_s": delay})
        await asyncio.sleep(interval if delay is None else delay)


class HeadSigner:
    """Signs a head when records were appended, then has the latest head cosigned by the witness (if one is
    configured). A witness that is down never stops the signing: its heads stay pending (ledger state
    ``witness``, metric ``eucaim_audit_witness_pending_leaves``) and the newest one is submitted each round."""

    def __init__(self, store: LedgerStore, key: Ed25519PrivateKey, origin: str, interval: float,
                 submitter: WitnessSubmitter | None = None, nodes: TreeNodeIndex | None = None) -> None:
        """``nodes``: kept up to the latest head after each signing, so proofs (and the witness's consistency
        proofs) read O(log n) subtree hashes (decision 0115)."""
        self.store, self.key, self.origin, self.interval = store, key, origin, interval
        self.submitter, self.nodes = submitter, nodes

    async def step(self) -> None:
        try:
            head = await self.store.sign_head(self.key, self.origin, datetime.now(UTC))
        except LedgerInconsistent as exc:
            log.error("tree head NOT signed: the ledger is inconsistent", extra={"error": str(exc)})
            head = None
        else:
            if head is not None:
                log.info("tree head signed", extra={"tree_size": head["_id"], "root": head["root"]})
        if self.nodes is not None:
            await self.index_step(self.nodes)
        if self.submitter is not None:
            await self.witness_step()
        return None

    async def index_step(self, nodes: TreeNodeIndex) -> None:
        """Extend the stored subtree hashes to the new head; if what they give is not its signed root, store nothing
        and rebuild them from the leaves (decision 0115). Logs sizes and hashes only, never record content."""
        try:
            await nodes.extend(self.store.signed_leaves)
            return
        except TreeNodesMismatch as exc:
            AUDIT_TREE_NODE_MISMATCHES.labels(SERVICE, "index").inc()
            log.error("subtree hashes NOT stored: they do not give the signed root; rebuilding them from the leaves",
                      extra={"tree_size": exc.size, "indexed_size": exc.covered, "computed_root": exc.computed_root,
                             "signed_root": exc.signed_root})
        except LedgerInconsistent as exc:  # proofs fall back to the leaves; verify finds what changed
            log.error("subtree hashes NOT stored: the ledger is inconsistent", extra={"error": str(exc)})
            return
        try:
            replaced = await nodes.rebuild()
        except TreeNodesMismatch as exc:
            log.error("subtree hashes NOT rebuilt: the stored leaf hashes do not give the signed root either "
                      "(run `eucaim-node audit verify`)", extra={"tree_size": exc.size, "computed_root": exc.computed_root,
                                                                 "signed_root": exc.signed_root})
        except LedgerInconsistent as exc:
            log.error("subtree hashes NOT rebuilt: the ledger is inconsistent", extra={"error": str(exc)})
        else:
            AUDIT_TREE_NODES_REPAIRED.labels(SERVICE).inc(replaced)
            log.warning("subtree hashes rebuilt from the leaves", extra={"replaced": replaced})

    async def witness_step(self) -> None:
        assert self.submitter is not None
        try:
            submitted = await self.submitter.submit_latest()
        except CheckpointRejected as exc:
            AUDIT_WITNESS_FAILURES.labels(SERVICE, "rejected_locally").inc()
            log.error("tree head NOT submitted to the witness: it failed the node's own check",
                      extra={"error": str(exc)[:500]})
        except WitnessUnavailable as exc:
            AUDIT_WITNESS_FAILURES.labels(SERVICE, "unavailable").inc()
            log.warning("witness unavailable: tree heads stay pending and are submitted when it answers",
                        extra={"error": str(exc)[:300]})
        except WitnessRolledBack as exc:
            AUDIT_WITNESS_FAILURES.labels(SERVICE, "rolled_back").inc()
            log.error("the witness went back below the size it cosigned: NOT re-anchored, records are still "
                      "recorded; an operator must check and allow it", extra={
                          "witness_size": exc.reported, "cosigned_size": exc.cosigned})
        except WitnessError as exc:
            AUDIT_WITNESS_FAILURES.labels(SERVICE, "refused").inc()
            log.error("the witness did not cosign the latest tree head", extra={"error": str(exc)[:500]})
        else:
            if submitted is not None and submitted.stale_hashes:
                AUDIT_TREE_NODE_MISMATCHES.labels(SERVICE, "proof").inc()
                AUDIT_TREE_NODES_REPAIRED.labels(SERVICE).inc(submitted.stale_hashes)
        head = await self.store.latest_head()
        witnessed = int((await self.store.witness_state()).get("size", 0))
        AUDIT_WITNESS_PENDING_LEAVES.labels(SERVICE).set(max(0, (int(head["_id"]) if head else 0) - witnessed))

    async def run(self) -> None:
        await _every(self.interval, self.step, "tree head signing")


class SyslogForwarder:
    """Sends every record, in leaf order, as a DICOM audit message, then every signed tree head covering the records
    sent (MSGID ``EUCAIM+TREE-HEAD``, the checkpoint as the message) and the witness's latest cosigned head (MSGID
    ``EUCAIM+COSIGNED-HEAD``, the checkpoint with the cosignature), so the repository holds the heads too and can
    check the records against them. Each cursor advances after a successful send (at least once: after a crash
    the last batch may be sent again)."""

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
        if contiguous:
            messages = [format_message(dicom_audit_message(r, origin=self.origin), at=r["recorded_at"],
                                       hostname=self.hostname) for r in contiguous]
            await self.sender.send(messages)
            await self.store.set_cursor(SYSLOG_CURSOR, start + len(contiguous))
            log.info("audit messages forwarded", extra={"count": len(contiguous), "next_leaf": start + len(contiguous)})
        forwarded = start + len(contiguous)
        heads = await self._forward_heads(forwarded)
        await self._forward_cosigned(forwarded)
        return 0.0 if len(contiguous) == self.batch or heads == self.batch else self.idle

    async def _forward_heads(self, forwarded_leaves: int) -> int:
        """Heads not yet sent whose leaves were all sent; the cursor holds the next head size to consider."""
        start = await self.store.get_cursor(SYSLOG_HEADS_CURSOR)
        heads = await self.store.heads_between(start, forwarded_leaves, limit=self.batch)
        if heads:
            now = datetime.now(UTC)
            await self.sender.send([format_message(h["note"], at=now, hostname=self.hostname, msgid=MSGID_HEAD)
                                    for h in heads])
            await self.store.set_cursor(SYSLOG_HEADS_CURSOR, int(heads[-1]["_id"]) + 1)
            log.info("tree heads forwarded", extra={"count": len(heads)})
        return len(heads)

    async def _forward_cosigned(self, forwarded_leaves: int) -> None:
        """The witness's latest cosignature (it vouches for every earlier leaf), once its leaves were sent."""
        state = await self.store.witness_state()
        size = state.get("cosigned_size")
        if not isinstance(size, int) or size < await self.store.get_cursor(SYSLOG_COSIGNED_CURSOR) \
                or size > forwarded_leaves:
            return
        await self.sender.send([format_message(state["cosigned_note"], at=datetime.now(UTC), hostname=self.hostname,
                                               msgid=MSGID_COSIGNED_HEAD)])
        await self.store.set_cursor(SYSLOG_COSIGNED_CURSOR, size + 1)
        log.info("cosigned tree head forwarded", extra={"tree_size": size})

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
