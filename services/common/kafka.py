"""Kafka clients built from ``KafkaSettings``: the FastStream broker and raw aiokafka options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.security import parse_security

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
    middlewares: Sequence[Any] = (),
    description: str | None = None,
) -> KafkaBroker:
    """A FastStream broker for ``service``; producers wait for all in-sync replicas."""
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=f"{settings.client_id}-{service}",
        security=settings.security(),
        acks="all",
        enable_idempotence=settings.enable_idempotence,
        middlewares=tuple(middlewares),
        description=description,
        # Topics are created deliberately at start-up with configured partitions.
        allow_auto_create_topics=False,
    )
