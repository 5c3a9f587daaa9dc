"""Run one service: HTTP, then topics and broker; on SIGTERM/SIGINT stop in order.

The HTTP endpoints come up before Kafka so that ``/healthz`` answers and ``/readyz`` can say
"not ready" while the broker is unreachable; connecting is retried with backoff until it works
or the service is told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field

import uvicorn
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from contracts.topics import TopicSpec
from services.common.backoff import Attempts, Backoff
from services.common.codecs import require_codecs
from services.common.config import ServiceSettings
from services.common.http import CheckResult
from services.common.private_apis import require_private_apis
from services.common.topics import ensure_topics

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]
_UNREACHABLE = (KafkaError, OSError, TimeoutError)
CONNECT_BACKOFF = Backoff(initial_s=0.5, max_s=10.0)
"""Between attempts to reach Kafka at start-up."""
"""What an unreachable or restarting broker raises; anything else stops the service."""


@dataclass
class ServiceApp:
    """Everything one service instance is made of; built by the service's ``create_app``."""

    name: str
    settings: ServiceSettings
    broker: KafkaBroker
    registry: CollectorRegistry
    http: Starlette
    topics: Sequence[TopicSpec] = ()
    connect: Sequence[Hook] = ()
    """Run before the broker starts, retried with it (e.g. starting a producer); idempotent."""
    after_start: Sequence[Hook] = ()
    before_stop: Sequence[Hook] = ()
    disconnect: Sequence[Hook] = ()
    """Run after the broker (and so every consumer) stopped."""
    started: asyncio.Event = field(default_factory=asyncio.Event)


def broker_check(broker: KafkaBroker, timeout: float = 2.0) -> Callable[[], Awaitable[CheckResult]]:
    """A readiness check that passes while ``broker`` answers a ping."""

    async def check() -> CheckResult:
        try:
            alive = await broker.ping(timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - any failure means "not connected"
            return CheckResult(False, f"broker unreachable: {type(exc).__name__}")
        return CheckResult(alive, "connected" if alive else "broker did not answer")

    return check


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service's run loop owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _connect(app: ServiceApp, stop: asyncio.Event) -> bool:
    """Create topics and start the broker, retrying with backoff; False if told to stop first."""
    attempts = Attempts(CONNECT_BACKOFF)
    while not stop.is_set():
        try:
            if app.settings.kafka.create_topics and app.topics:
                await ensure_topics(app.settings.kafka, app.topics)
            for hook in app.connect:
                await hook()
            await app.broker.start()
        except _UNREACHABLE as exc:  # keep the service alive and retry; other errors are bugs
            delay = attempts.next_wait()
            log.warning(
                "kafka not reachable, retrying",
                extra={"error": f"{type(exc).__name__}: {exc}", "retry_in_s": round(delay, 3)},
            )
            with contextlib.suppress(Exception):
                await app.broker.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
        else:
            return True
    return False


async def serve(app: ServiceApp, stop: asyncio.Event | None = None) -> None:
    """Run ``app`` until ``stop`` is set or SIGTERM/SIGINT arrives, then shut down cleanly.

    Raises ``CodecUnavailable`` (a ``ConfigError``) before anything starts when a Kafka
    compression codec cannot be read: better no service than one that stops at the first
    compressed batch; and ``PrivateApiChanged`` (a ``ConfigError`` too) when aiokafka's or
    prometheus_client's internals are not what the fetch guard and the histograms rely on.
    """
    require_codecs()
    require_private_apis()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    config = uvicorn.Config(
        app.http,
        host=app.settings.http_host,
        port=app.settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    server = _QuietServer(config)
    http_task = asyncio.create_task(server.serve(), name=f"{app.name}-http")
    try:
        if await _connect(app, stop):
            for hook in app.after_start:
                await hook()
            app.started.set()
            log.info("service started", extra={"port": app.settings.http_port})
            await stop.wait()
        log.info("service stopping")
        for hook in app.before_stop:
            await hook()
        await app.broker.stop()
        for hook in app.disconnect:
            await hook()
    finally:
        server.should_exit = True
        await http_task
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        log.info("service stopped")
