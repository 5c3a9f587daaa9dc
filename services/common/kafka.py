"""Kafka clients built from ``KafkaSettings``: the FastStream broker and raw aiokafka options."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeAlias, TypedDict

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.security import parse_security
from prometheus_client import CollectorRegistry

from services.common import fetch_guard
from services.common.config import KafkaSettings

Records: TypeAlias = "ConsumerRecord[Any, Any] | Sequence[ConsumerRecord[Any, Any]]"
"""What a subscriber's message carries: one record, or a batch's (a tuple from aiokafka, a list
from FastStream's in-memory ``TestKafkaBroker``)."""


def batch_records(raw: Records) -> tuple[ConsumerRecord[Any, Any], ...]:
    """The records of a message, whether it carries one record or a batch."""
    return tuple(raw) if isinstance(raw, (tuple, list)) else (raw,)


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (admin, producer, consumer)."""
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        **parse_security(settings.security()),
    }


class ConsumerOptions(TypedDict):
    isolation_level: Literal["read_committed", "read_uncommitted"]
    session_timeout_ms: int
    heartbeat_interval_ms: int


def consumer_options(settings: KafkaSettings) -> ConsumerOptions:
    """What every consumer of the product is built with, raw or under FastStream: the fetch
    guard installed, the isolation level of ``KAFKA_ISOLATION_LEVEL`` (``read_committed`` by
    default, so records a transactional producer aborted are never read), and the group
    session's timings (``KAFKA_SESSION_TIMEOUT_MS``, ``KAFKA_HEARTBEAT_INTERVAL_MS``)."""
    fetch_guard.install()
    return ConsumerOptions(
        isolation_level=settings.isolation_level,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
    )


def make_broker(
    settings: KafkaSettings,
    *,
    service: str,
    registry: CollectorRegistry | None = None,
    description: str | None = None,
) -> KafkaBroker:
    """A FastStream broker for ``service``; producers wait for all in-sync replicas.

    With a ``registry``, FastStream's own Prometheus metrics (``faststream_*``) go into it.
    Give its subscribers ``**consumer_options(settings)`` (the fetch guard and the isolation
    level) and ``parser=raw_headers`` (headers reach the handlers as the producer sent them).
    """
    middlewares: Sequence[Any] = (
        (KafkaPrometheusMiddleware(registry=registry, app_name=service),) if registry else ()
    )
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=f"{settings.client_id}-{service}",
        security=settings.security(),
        acks="all",
        enable_idempotence=settings.enable_idempotence,
        middlewares=tuple(middlewares),
        # FastStream's records go through the service's own handlers (JSON or text), and its
        # per-message "Received"/"Processed" lines only show at DEBUG.
        logger=logging.getLogger(f"services.{service}.faststream"),
        log_level=logging.DEBUG,
        description=description,
        # Topics are created deliberately at start-up with configured partitions.
        allow_auto_create_topics=False,
    )


async def no_decoding(_: Any) -> None:
    """A FastStream decoder that leaves bodies alone: the handlers decode the raw records with
    ``contracts``."""


async def raw_headers(records: Records, original: Callable[[Records], Awaitable[Any]]) -> Any:
    """FastStream's own parsing, but with every record's headers left as bytes.

    FastStream decodes each header value as UTF-8 before any handler runs: a null value or one
    that is not UTF-8 raises there, and the batch would never reach the handler (nor the DLQ).
    So a batch FastStream cannot parse is given to it again as copies without headers. Either
    way the handlers read ``raw_message`` themselves, and the message carries the records as
    received. Copying first, whenever a record had headers, cost metrics a fifth of its replay
    rate once every canonical event carried ``x-roadmap-publisher``.
    """
    batch = batch_records(records)
    try:
        message = await original(records)
    except (UnicodeDecodeError, AttributeError):  # a header value FastStream cannot decode
        bare = tuple(dataclasses.replace(r, headers=()) if r.headers else r for r in batch)
        message = await original(bare if isinstance(records, (tuple, list)) else bare[0])
    message.raw_message = batch if isinstance(records, (tuple, list)) else records
    return message
