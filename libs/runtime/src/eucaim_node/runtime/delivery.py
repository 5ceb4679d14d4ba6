"""At-least-once delivery with bounded retries and a dead-letter topic.

The node commits a Kafka offset only after its handler succeeded (``AckPolicy.NACK_ON_ERROR``:
an error rewinds the partition to the failed message). Two kinds of failure are told apart:

* a **transient** failure (a dependency is down: Orthanc, MongoDB, Kafka) is retried without
  bound, with capped exponential backoff: the message is fine, the world is not, and dead-
  lettering every message during an outage would turn an outage into an operator chore;
* any other failure (invalid payload, a bug, data the node cannot handle) is retried
  ``max_attempts`` times, then the message is published to the consumer group's dead-letter
  topic with the error in its headers, and its offset is committed so the partition moves on.

If publishing to the dead-letter topic itself fails, the error propagates and the message is
redelivered: nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from faststream import AckPolicy
from faststream.middlewares import BaseMiddleware
from pydantic import ValidationError
from pymongo.errors import AutoReconnect, ConnectionFailure, NetworkTimeout

from eucaim_node.telemetry import metrics

from .backoff import backoff_delay

log = logging.getLogger("eucaim_node.delivery")

#: Subscriber policy of every consumer: commit after success, rewind on error. Never ACK_FIRST.
CONSUMER_ACK_POLICY = AckPolicy.NACK_ON_ERROR


class TransientError(Exception):
    """A dependency is unavailable; the message must be retried, never dead-lettered."""


_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    TransientError,
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
    httpx.TransportError,
    KafkaConnectionError,
    KafkaTimeoutError,
    ConnectionFailure,
    AutoReconnect,
    NetworkTimeout,
)


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says a dependency is down rather than the message is bad."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _TRANSIENT_TYPES):
            return True
        # requests/urllib3 connection errors (orthanc-api-client) subclass OSError/ConnectionError;
        # its HttpError for 5xx answers from a restarting Orthanc counts as transient too.
        status = getattr(current, "http_status_code", None)
        if isinstance(status, int) and status in (502, 503, 504):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def describe_error(exc: BaseException, limit: int = 300) -> str:
    """Short description for headers and logs. Payloads carry no identifiers, so neither does this.

    A validation error is described by field and problem only: pydantic's own text quotes the
    input values, and a message that is not the node's may carry anything.
    """
    if isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
                             for e in exc.errors(include_input=False, include_url=False))
        text = f"ValidationError: {exc.error_count()} error(s) for {exc.title}: {problems}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class DeliveryPolicy:
    dead_letter_topic: str
    max_attempts: int = 3
    retry_backoff_seconds: float = 0.5
    transient_backoff_max_seconds: float = 30.0

    def retry_delay(self, attempt: int) -> float:
        return backoff_delay(attempt, first=self.retry_backoff_seconds, cap=self.transient_backoff_max_seconds)


class _Redeliver(Exception):
    """Internal: a transient failure after its backoff; the ack middleware rewinds the partition."""


def dead_letter_middleware(policy: DeliveryPolicy, publish: Callable[..., Any],
                           service: str = "unknown") -> Callable[..., BaseMiddleware]:
    """Build the broker middleware enforcing ``policy``; ``publish`` is the broker's publish method.

    It also counts outcomes for Prometheus (``service`` is the label): handled, failed attempts by
    kind, dead-lettered, and the duration of every attempt.
    """
    transient_streaks: dict[tuple[str, int, int], int] = {}

    class DeadLetterMiddleware(BaseMiddleware):
        async def consume_scope(self, call_next, msg):
            record = msg.raw_message
            where = (record.topic, record.partition, record.offset)
            attempt = 0
            while True:
                attempt += 1
                started = time.perf_counter()
                try:
                    result = await call_next(msg)
                except Exception as exc:
                    metrics.HANDLING_SECONDS.labels(service, record.topic, "failure").observe(time.perf_counter() - started)
                    transient = is_transient(exc)
                    metrics.EVENTS_FAILED.labels(service, record.topic, "transient" if transient else "error").inc()
                    if transient:
                        streak = transient_streaks.get(where, 0) + 1
                        transient_streaks[where] = streak
                        delay = policy.retry_delay(streak)
                        log.warning(
                            "dependency unavailable, will retry",
                            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset,
                                   "error": describe_error(exc), "retry_in_s": delay},
                        )
                        await asyncio.sleep(delay)
                        raise _Redeliver(describe_error(exc)) from exc
                    if attempt < policy.max_attempts:
                        log.warning(
                            "handler failed, retrying",
                            extra={"topic": record.topic, "offset": record.offset, "attempt": attempt,
                                   "error": describe_error(exc)},
                        )
                        await asyncio.sleep(policy.retry_delay(attempt))
                        continue
                    transient_streaks.pop(where, None)
                    await _dead_letter(record, exc, attempt)
                    return None
                metrics.HANDLING_SECONDS.labels(service, record.topic, "success").observe(time.perf_counter() - started)
                metrics.EVENTS_HANDLED.labels(service, record.topic).inc()
                transient_streaks.pop(where, None)
                return result

        async def after_processed(self, exc_type=None, exc_val=None, exc_tb=None):
            # Failures outside the handler call (e.g. the parser) would otherwise loop forever.
            if exc_val is None or isinstance(exc_val, _Redeliver) or not isinstance(exc_val, Exception):
                return False
            if is_transient(exc_val):
                return False
            metrics.EVENTS_FAILED.labels(service, self.msg.topic, "error").inc()
            await _dead_letter(self.msg, exc_val, 1)
            return True

    async def _dead_letter(record, exc: BaseException, attempts: int) -> None:
        headers = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
        headers.update(
            {
                "x-dlq-original-topic": record.topic,
                "x-dlq-original-partition": str(record.partition),
                "x-dlq-original-offset": str(record.offset),
                "x-dlq-error": describe_error(exc),
                "x-dlq-attempts": str(attempts),
            }
        )
        await publish(record.value, topic=policy.dead_letter_topic, key=record.key, headers=headers)
        metrics.EVENTS_DEAD_LETTERED.labels(service, record.topic).inc()
        log.error(
            "message dead-lettered",
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset,
                   "dead_letter_topic": policy.dead_letter_topic, "error": describe_error(exc)},
        )

    return DeadLetterMiddleware
