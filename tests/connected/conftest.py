from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.common.config import KafkaSettings
from tests.support.kafka import RealBroker, real_broker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealBroker]:
    """One real broker for the whole connected tier."""
    with real_broker(tmp_path_factory.mktemp("broker")) as running:
        yield running


@pytest.fixture
def kafka_settings(broker: RealBroker) -> KafkaSettings:
    """Settings pointing at the real broker, with idempotence left to configuration (off here)."""
    return KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic_partitions=3)
