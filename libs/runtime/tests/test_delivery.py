"""The retry/dead-letter policy, driven through the middleware with a stand-in message."""

from types import SimpleNamespace

import httpx
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from eucaim_node.runtime import DeliveryPolicy, TransientError, is_transient
from eucaim_node.runtime.delivery import _Redeliver, dead_letter_middleware


class _HttpError(Exception):
    def __init__(self, status):
        self.http_status_code = status


@pytest.mark.parametrize("exc", [
    TransientError("down"), ConnectionRefusedError(), TimeoutError(), httpx.ConnectError("x"),
    ServerSelectionTimeoutError("no server"), _HttpError(503),
])
def test_dependency_failures_are_transient(exc):
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [ValueError("bad payload"), KeyError("x"), _HttpError(400), _HttpError(500)])
def test_message_failures_are_not_transient(exc):
    assert not is_transient(exc)


def test_transient_cause_makes_the_wrapper_transient():
    try:
        try:
            raise ConnectionResetError()
        except ConnectionResetError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert is_transient(outer)


def test_backoff_doubles_and_is_capped():
    policy = DeliveryPolicy("dlq", retry_backoff_seconds=1, transient_backoff_max_seconds=5)
    assert [policy.retry_delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]


def _message(offset=7):
    record = SimpleNamespace(topic="eucaim.study.received.v1", partition=1, offset=offset, key=b"2.25.1",
                             value=b'{"x":1}', headers=[("eucaim-event-type", b"StudyReceived")])
    return SimpleNamespace(raw_message=record)


def _middleware(max_attempts=3):
    published = []

    async def publish(body, **kw):
        published.append((body, kw))

    policy = DeliveryPolicy("eucaim.dlq.anonymisation.v1", max_attempts=max_attempts, retry_backoff_seconds=0,
                            transient_backoff_max_seconds=0.01)
    cls = dead_letter_middleware(policy, publish)
    return cls(_message().raw_message, context=None), published


async def test_poison_message_is_retried_then_dead_lettered_with_the_error():
    middleware, published = _middleware(max_attempts=3)
    calls = []

    async def handler(msg):
        calls.append(1)
        raise ValueError("cannot handle this")

    assert await middleware.consume_scope(handler, _message()) is None
    assert len(calls) == 3
    [(body, kw)] = published
    assert body == b'{"x":1}' and kw["topic"] == "eucaim.dlq.anonymisation.v1" and kw["key"] == b"2.25.1"
    assert kw["headers"]["x-dlq-original-topic"] == "eucaim.study.received.v1"
    assert kw["headers"]["x-dlq-original-offset"] == "7"
    assert kw["headers"]["x-dlq-error"].startswith("ValueError: cannot handle this")
    assert kw["headers"]["eucaim-event-type"] == "StudyReceived"


async def test_success_after_a_failure_is_not_dead_lettered():
    middleware, published = _middleware()
    outcomes = iter([ValueError("flaky"), "done"])

    async def handler(msg):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert await middleware.consume_scope(handler, _message()) == "done"
    assert published == []


async def test_transient_failure_is_redelivered_never_dead_lettered():
    middleware, published = _middleware(max_attempts=1)

    async def handler(msg):
        raise ConnectionRefusedError("orthanc down")

    for _ in range(5):
        with pytest.raises(_Redeliver):
            await middleware.consume_scope(handler, _message())
    assert published == []


async def test_failure_outside_the_handler_is_dead_lettered_and_suppressed():
    middleware, published = _middleware()
    assert await middleware.after_processed(ValueError, ValueError("parser failed"), None) is True
    assert len(published) == 1
    assert await middleware.after_processed(_Redeliver, _Redeliver("x"), None) is False
    assert await middleware.after_processed(None, None, None) is False
    assert len(published) == 1


async def test_failed_dead_letter_publication_propagates_so_the_message_is_redelivered():
    async def broken_publish(body, **kw):
        raise ConnectionError("kafka down")

    cls = dead_letter_middleware(DeliveryPolicy("dlq", max_attempts=1, retry_backoff_seconds=0), broken_publish)

    async def handler(msg):
        raise ValueError("poison")

    with pytest.raises(ConnectionError):
        await cls(None, context=None).consume_scope(handler, _message())
