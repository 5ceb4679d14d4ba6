"""`eucaim-node dlq list|replay TOPIC`: look at and replay a consumer group's dead letters, audited.

A dead letter is the original message (bytes, key, headers) plus ``x-dlq-*`` headers naming where it
came from and why it failed (decision 0005). Replaying republishes the original message to its
original topic, so the consumer group handles it again; handlers are idempotent, so replaying a
message twice is harmless. Which dead letters were replayed is kept as the committed offsets of
the consumer group ``eucaim-node-dlq-replay`` on the dead-letter topic: ``replay`` takes what is
past them, and a message that fails again is dead-lettered again, as a new dead letter.

Every use is recorded for the audit log as an ``AccessRecorded`` event (``dlq-list``,
``dlq-replay``) naming the operator, the topic and what was done; never the payloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from eucaim_node.events import DLQ_REPLAY_GROUP, dead_letter_topic
from eucaim_node.runtime import KafkaSettings

from .operator import operator_name, record_access

app = typer.Typer(help="Dead-letter topics: list what failed, replay it once the cause is fixed (audited).",
                  no_args_is_help=True)

REPLAY_GROUP = DLQ_REPLAY_GROUP
DLQ_PREFIX = "eucaim.dlq."
REPLAYED_FROM = "x-dlq-replayed-from"

TopicArgument = Annotated[str, typer.Argument(
    help="A dead-letter topic (eucaim.dlq.<group>.v1) or just the consumer group (anonymisation, metadata, "
         "catalogue-sync, audit).")]
BootstrapOption = Annotated[str | None, typer.Option(
    "--bootstrap", help="Kafka bootstrap servers (default: EUCAIM_KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092); "
                        "TLS/SASL from EUCAIM_KAFKA_SECURITY_PROTOCOL etc., as in the services.")]
OperatorOption = Annotated[str | None, typer.Option(
    "--operator", help="Who is acting, for the audit log (default: EUCAIM_OPERATOR, else user@host).")]


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    original_topic: str | None
    original_partition: int | None
    original_offset: int | None
    attempts: int | None
    error: str
    event_type: str | None
    event_id: str | None
    key: str | None
    replayed: bool


def resolve_topic(topic: str) -> str:
    return topic if topic.startswith(DLQ_PREFIX) else dead_letter_topic(topic)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _describe(record, replayed: bool) -> DeadLetter:
    headers = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
    try:
        body = json.loads(record.value or b"")
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    return DeadLetter(
        partition=record.partition, offset=record.offset,
        original_topic=headers.get("x-dlq-original-topic"),
        original_partition=_int(headers.get("x-dlq-original-partition")),
        original_offset=_int(headers.get("x-dlq-original-offset")),
        attempts=_int(headers.get("x-dlq-attempts")),
        error=headers.get("x-dlq-error", ""),
        event_type=headers.get("eucaim-event-type") or (str(body["event_type"]) if "event_type" in body else None),
        event_id=str(body["event_id"]) if "event_id" in body else None,
        key=record.key.decode(errors="replace") if record.key else None,
        replayed=replayed,
    )


class DeadLetterTopic:
    """Reads one dead-letter topic with the replay group's committed offsets (never joins the group)."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self.settings = settings
        self.bootstrap = settings.kafka_bootstrap_servers
        self.topic = topic
        self.consumer = AIOKafkaConsumer(**settings.kafka_client_options(), group_id=REPLAY_GROUP,
                                         client_id="eucaim-node-cli", enable_auto_commit=False,
                                         auto_offset_reset="earliest")

    async def __aenter__(self) -> DeadLetterTopic:
        admin = AIOKafkaAdminClient(**self.settings.kafka_client_options(), client_id="eucaim-node-cli")
        await admin.start()
        try:
            if self.topic not in await admin.list_topics():
                raise typer.BadParameter(f"no topic {self.topic!r} on {self.bootstrap}", param_hint="TOPIC")
            [described] = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        self.partitions = [TopicPartition(self.topic, p["partition"]) for p in described["partitions"]]
        await self.consumer.start()
        self.consumer.assign(self.partitions)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self.consumer.stop()

    async def replayed_up_to(self) -> dict[TopicPartition, int]:
        return {tp: (await self.consumer.committed(tp)) or 0 for tp in self.partitions}

    async def read(self) -> list[tuple[Any, bool]]:
        """Every message now on the topic, with whether it was replayed already."""
        done = await self.replayed_up_to()
        end = await self.consumer.end_offsets(self.partitions)
        await self.consumer.seek_to_beginning(*self.partitions)
        records = []
        pending = [tp for tp in self.partitions if await self.consumer.position(tp) < end[tp]]
        while pending:
            batch = await self.consumer.getmany(*pending, timeout_ms=1000)
            for tp, messages in batch.items():
                records += [(m, m.offset < done[tp]) for m in messages if m.offset < end[tp]]
            pending = [tp for tp in pending if await self.consumer.position(tp) < end[tp]]
        return sorted(records, key=lambda r: (r[0].partition, r[0].offset))

    async def mark_replayed(self, record) -> None:
        tp = TopicPartition(record.topic, record.partition)
        await self.consumer.commit({tp: OffsetAndMetadata(record.offset + 1, "")})


async def _audit(settings: KafkaSettings, operator: str, action: str, topic: str, outcome: str,
                 detail: dict[str, Any]) -> None:
    await record_access(settings, action, topic, outcome, detail, operator=operator)


def _settings(bootstrap: str | None) -> KafkaSettings:
    """Kafka settings from the environment (EUCAIM_KAFKA_*, as in every pod; locally the stack's node.env, the
    operator's principal), bootstrap overridable."""
    from .search import load

    return load(KafkaSettings, None, **({"kafka_bootstrap_servers": bootstrap} if bootstrap else {}))


async def list_dead_letters(settings: KafkaSettings, topic: str) -> list[DeadLetter]:
    async with DeadLetterTopic(settings, topic) as dlq:
        return [_describe(record, replayed) for record, replayed in await dlq.read()]


def _positions(records) -> str:
    """``partition:first-last`` per partition, for the audit record (no payloads, no keys)."""
    spans: dict[int, list[int]] = {}
    for r in records:
        spans.setdefault(r.partition, []).append(r.offset)
    return ",".join(f"{p}:{min(o)}-{max(o)}" for p, o in sorted(spans.items()))


async def replay_dead_letters(settings: KafkaSettings, topic: str, operator: str, *,
                              dry_run: bool = False) -> dict[str, Any]:
    """Republish every dead letter not replayed yet to its original topic; returns what was done."""
    async with DeadLetterTopic(settings, topic) as dlq:
        pending = [record for record, replayed in await dlq.read() if not replayed]
        replayable = [r for r in pending if any(k == "x-dlq-original-topic" for k, _ in (r.headers or ()))]
        skipped = [r for r in pending if r not in replayable]
        summary: dict[str, Any] = {"topic": topic, "pending": len(pending), "replayed": 0, "skipped": len(skipped),
                                   "dry_run": dry_run, "positions": _positions(replayable)}
        if dry_run or not pending:
            await _audit(settings, operator, "dlq-replay", topic, "success",
                         {k: summary[k] for k in ("pending", "replayed", "skipped", "positions", "dry_run")})
            return summary
        producer = AIOKafkaProducer(**settings.kafka_client_options(), client_id="eucaim-node-cli-dlq",
                                    enable_idempotence=True, acks="all")
        await producer.start()
        outcome, error = "success", None
        try:
            for record in pending:
                if record in replayable:
                    headers = [(k, v) for k, v in (record.headers or ()) if not k.startswith("x-dlq-")]
                    original = dict(record.headers or ())["x-dlq-original-topic"].decode()
                    headers.append((REPLAYED_FROM, f"{record.topic}:{record.partition}:{record.offset}".encode()))
                    await producer.send_and_wait(original, record.value, key=record.key, headers=headers)
                    summary["replayed"] += 1
                await dlq.mark_replayed(record)  # a message without its origin cannot be replayed: pass it
        except Exception as exc:
            outcome, error = "failure", f"{type(exc).__name__}: {exc}"[:300]
            raise
        finally:
            await producer.stop()
            detail = {k: summary[k] for k in ("pending", "replayed", "skipped", "positions")}
            if error:
                detail["error"] = error
            await _audit(settings, operator, "dlq-replay", topic, outcome, detail)
        return summary


@app.command("list")
def list_command(
    topic: TopicArgument,
    bootstrap: BootstrapOption = None,
    operator: OperatorOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per dead letter.")] = False,
) -> None:
    """Show every dead letter of TOPIC: where it came from, why it failed, whether it was replayed."""
    settings, name = _settings(bootstrap), resolve_topic(topic)
    letters = asyncio.run(list_dead_letters(settings, name))
    asyncio.run(_audit(settings, operator_name(operator), "dlq-list", name, "success",
                       {"messages": len(letters), "pending": sum(not d.replayed for d in letters)}))
    if json_output:
        for letter in letters:
            typer.echo(json.dumps(asdict(letter)))
        return
    if not letters:
        typer.echo(f"{name}: no dead letters")
        return
    typer.echo(f"{name}: {len(letters)} dead letter(s), {sum(not d.replayed for d in letters)} not replayed")
    for d in letters:
        state = "replayed" if d.replayed else "pending"
        typer.echo(f"  {d.partition}:{d.offset}  {state:<8} {d.event_type or '?'} {d.event_id or '-'} "
                   f"from {d.original_topic}:{d.original_partition}:{d.original_offset} "
                   f"after {d.attempts} attempt(s): {d.error}")


@app.command("replay")
def replay_command(
    topic: TopicArgument,
    bootstrap: BootstrapOption = None,
    operator: OperatorOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be replayed; change nothing.")] = False,
) -> None:
    """Republish TOPIC's dead letters not replayed yet to their original topics (after fixing the cause)."""
    settings, name = _settings(bootstrap), resolve_topic(topic)
    summary = asyncio.run(replay_dead_letters(settings, name, operator_name(operator), dry_run=dry_run))
    verb = "would replay" if dry_run else "replayed"
    count = summary["pending"] - summary["skipped"] if dry_run else summary["replayed"]
    typer.echo(f"{name}: {verb} {count} dead letter(s)"
               + (f", skipped {summary['skipped']} without an original topic" if summary["skipped"] else "")
               + (f" ({summary['positions']})" if summary["positions"] else ""))
