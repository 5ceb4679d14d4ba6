"""What every eucaim-node service process runs on: settings, Kafka with reliable delivery, health, logging."""

from .app import ReadinessCheck, build_app, run_service
from .backoff import backoff_delay
from .delivery import CONSUMER_ACK_POLICY, DeliveryPolicy, TransientError, is_transient
from .kafka import EventPublisher, create_broker, ensure_topics, publish_events
from .settings import (
    ConfigurationError,
    KafkaSettings,
    NodeSettings,
    ServiceSettings,
    load_settings,
)

__all__ = [
    "CONSUMER_ACK_POLICY",
    "ConfigurationError",
    "DeliveryPolicy",
    "EventPublisher",
    "KafkaSettings",
    "NodeSettings",
    "ReadinessCheck",
    "ServiceSettings",
    "TransientError",
    "backoff_delay",
    "build_app",
    "create_broker",
    "ensure_topics",
    "is_transient",
    "load_settings",
    "publish_events",
    "run_service",
]
