"""Topic names not tied to one event type."""

from .models import DOMAIN_EVENTS

DOMAIN_TOPICS: tuple[str, ...] = tuple(e.TOPIC for e in DOMAIN_EVENTS)


def dead_letter_topic(consumer_group: str) -> str:
    """Dead-letter topic of one consumer group: poison messages it gave up on, with the error."""
    return f"eucaim.dlq.{consumer_group}.v1"
