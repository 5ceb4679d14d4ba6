"""The process around a service: FastStream app, health endpoints, logging, clean exit on bad config."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.kafka import KafkaBroker

from eucaim_node.telemetry import TelemetryConfigurationError, configure_logging, configure_tracing, metrics, shutdown_tracing

from .kafka import BROKER_SETTINGS
from .lag import ConsumerLagProbe
from .settings import ConfigurationError, ServiceSettings, exit_on_arguments, load_settings

S = TypeVar("S", bound=ServiceSettings)

log = logging.getLogger("eucaim_node.app")

#: A readiness check: its name and an async callable that raises or returns False when not ready.
ReadinessCheck = tuple[str, Callable[[], Awaitable[Any]]]

_JSON = {"content-type": "application/json"}


def _json(status: int, body: str) -> AsgiResponse:
    return AsgiResponse(body.encode(), status, headers=_JSON)


def health_routes(broker: KafkaBroker, checks: Sequence[ReadinessCheck], timeout: float = 3.0):
    """``/health/live`` (the process answers) and ``/health/ready`` (broker and every dependency reachable)."""

    @get(include_in_schema=False)
    async def live(scope) -> AsgiResponse:
        return _json(200, '{"status":"alive"}')

    async def _run(name: str, check: Callable[[], Awaitable[Any]]) -> tuple[str, bool]:
        try:
            ok = await asyncio.wait_for(check(), timeout)
        except Exception:
            return name, False
        return name, ok is not False

    async def broker_ping() -> bool:
        return await broker.ping(timeout)

    @get(include_in_schema=False)
    async def ready(scope) -> AsgiResponse:
        results = await asyncio.gather(*(_run(n, c) for n, c in [("kafka", broker_ping), *checks]))
        failing = [n for n, ok in results if not ok]
        body = "{" + ",".join(f'"{n}":{"true" if ok else "false"}' for n, ok in results) + "}"
        return _json(503 if failing else 200, body)

    return [("/health/live", live), ("/health/ready", ready)]


def consumer_groups(broker: KafkaBroker) -> dict[str, tuple[str, ...]]:
    """The consumer groups of the broker's subscribers and the topics each consumes."""
    groups: dict[str, set[str]] = {}
    for subscriber in broker.subscribers:
        group = getattr(subscriber, "group_id", None)
        if group:
            groups.setdefault(group, set()).update(subscriber.topic_names)
    return {g: tuple(sorted(t)) for g, t in groups.items()}


def metrics_route(lag: ConsumerLagProbe | None):
    """``/metrics``: Prometheus exposition; consumer lag is measured first (at most every few seconds)."""

    @get(include_in_schema=False)
    async def serve_metrics(scope) -> AsgiResponse:
        if lag is not None:
            await lag.refresh()
        body, content_type = metrics.render()
        return AsgiResponse(body, 200, headers={"content-type": content_type})

    return ("/metrics", serve_metrics)


class _MountingApp(AsgiFastStream):
    """AsgiFastStream matches exact paths only; an API with path parameters (``/jobs/{id}``) is mounted at a prefix."""

    def __init__(self, *args: Any, mounts: Sequence[tuple[str, Any]] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mounts = tuple(mounts)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for prefix, mounted in self._mounts:
                if scope["path"].startswith(prefix):
                    await mounted(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


def build_app(
    broker: KafkaBroker,
    *,
    checks: Sequence[ReadinessCheck] = (),
    routes: Sequence[tuple[str, Any]] = (),
    mounts: Sequence[tuple[str, Any]] = (),
    on_startup: Sequence[Callable[..., Any]] = (),
    after_startup: Sequence[Callable[..., Any]] = (),
    on_shutdown: Sequence[Callable[..., Any]] = (),
) -> AsgiFastStream:
    """The service's app: the broker, ``/health/live``, ``/health/ready``, ``/metrics``, ``routes`` (exact paths)
    and ``mounts`` (bare ASGI apps, each answering every path under its prefix)."""
    lag = None
    if broker in BROKER_SETTINGS and (groups := consumer_groups(broker)):
        settings, service = BROKER_SETTINGS[broker]
        lag = ConsumerLagProbe(settings, service, groups)

    async def close_telemetry() -> None:
        if lag is not None:
            await lag.close()
        shutdown_tracing()

    return _MountingApp(
        broker,
        mounts=mounts,
        logger=logging.getLogger("eucaim_node.app"),
        asgi_routes=[*health_routes(broker, checks), metrics_route(lag), *routes],
        on_startup=on_startup,
        after_startup=after_startup,
        on_shutdown=[*on_shutdown, close_telemetry],
    )


def run_service(name: str, settings_cls: type[S], create_app: Callable[[S], AsgiFastStream]) -> None:
    """Entry point of a service process: settings, logging, then the app until SIGTERM/SIGINT.

    Wrong configuration (a missing variable, an unreadable key or password file) ends the
    process with status 2 and one readable line per problem, never with a traceback.
    """
    exit_on_arguments(name, settings_cls)
    settings = load_settings(settings_cls)
    configure_logging(name, level=settings.log_level, fmt=settings.log_format)
    try:
        configure_tracing(name)
    except TelemetryConfigurationError as exc:
        print(f"configuration error in {name}: {exc}", file=sys.stderr)
        raise ConfigurationError(2) from None
    try:
        app = create_app(settings)
    # A key file that is missing or too short raises KeyFileError, a ValueError (eucaim_node.deid.keys).
    except (OSError, ValueError) as exc:
        print(f"configuration error in {name}: {exc}", file=sys.stderr)
        raise ConfigurationError(2) from None
    log.info("starting", extra={"service": name, "health_port": settings.health_port})
    asyncio.run(
        app.run(
            log_level=getattr(logging, settings.log_level),
            run_extra_options={"host": settings.health_host, "port": settings.health_port, "log_config": None,
                               "access_log": "false"},
        )
    )
