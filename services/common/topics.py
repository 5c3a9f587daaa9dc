"""Create the product's topics at start-up with the configured partitions (idempotent)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from contracts.topics import TopicSpec
from services.common.config import KafkaSettings
from services.common.kafka import client_options

log = logging.getLogger(__name__)
_TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno


def _new_topic(spec: TopicSpec, settings: KafkaSettings) -> NewTopic:
    return NewTopic(
        name=settings.topic_name(spec),
        num_partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
        topic_configs=spec.topic_config(),
    )


async def ensure_topics(settings: KafkaSettings, specs: Iterable[TopicSpec]) -> list[str]:
    """Create each topic that does not exist yet; return the names created.

    Raises ``RuntimeError`` naming the topic when the broker refuses for another reason.
    """
    wanted = [_new_topic(spec, settings) for spec in specs]
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        response = await admin.create_topics(wanted)
    finally:
        await admin.close()
    created = []
    for name, code, message in (error[:3] for error in response.topic_errors):
        if code == 0:
            created.append(name)
            log.info("topic created", extra={"topic": name})
        elif code != _TOPIC_ALREADY_EXISTS:
            raise RuntimeError(f"cannot create topic {name}: error {code} {message or ''}".strip())
    return created
