"""Kafka clients built from ``KafkaSettings``: the FastStream broker and raw aiokafka options."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.security import parse_security
from prometheus_client import CollectorRegistry

from services.common.config import KafkaSettings


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (admin, producer, consumer)."""
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        **parse_security(settings.security()),
    }


def make_broker(
    settings: KafkaSettings,
    *,
    service: str,
    registry: CollectorRegistry | None = None,
    description: str | None = None,
) -> KafkaBroker:
    """A FastStream broker for ``service``; producers wait for all in-sync replicas.

    With a ``registry``, FastStream's own Prometheus metrics (``faststream_*``) go into it.
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
