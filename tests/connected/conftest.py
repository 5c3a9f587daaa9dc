from __future__ import annotations

import pytest

from services.common.config import KafkaSettings
from tests.support.kafka import RealBroker


@pytest.fixture
def kafka_settings(broker: RealBroker) -> KafkaSettings:
    """Settings pointing at the real broker, with idempotence left to configuration (off here)."""
    return KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic_partitions=3)
