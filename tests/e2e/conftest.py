"""Fixtures of the e2e tier: a real broker, a real webhook receiver, a real Alertmanager.

The broker is chosen as for the connected tier (``tests.support.kafka.real_broker``: Apache
Kafka, or an external one). Alertmanager is Debian's
``prometheus-alertmanager`` binary; when it is missing the test fails (it is not skipped) with
how to install it. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common.config import KafkaSettings
from tests.support.alertmanager import (
    AlertmanagerNotFoundError,
    RunningAlertmanager,
    find_alertmanager,
    running_alertmanager,
)
from tests.support.kafka import RealBroker, unique_name
from tests.support.receiver import RecordingReceiver

WEBHOOK_PATH = "/alertmanager"
"""Where Alertmanager's webhook receiver posts on the test's ``RecordingReceiver``."""


@pytest.fixture
def kafka_settings(broker: RealBroker) -> KafkaSettings:
    """Settings pointing at the real broker, with topics of this test only (own prefix)."""
    return KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers,
        topic_partitions=3,
        topic_prefix=unique_name("e2e") + ".",
    )


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[RecordingReceiver]:
    """A real loopback HTTP server recording every request; Alertmanager's webhook target."""
    receiver = RecordingReceiver()
    async with receiver.running():
        yield receiver


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """One route to one webhook receiver, grouped per alert, with short waits for a test."""
    return {
        "global": {"resolve_timeout": "1m"},
        "route": {
            "receiver": "webhook",
            "group_by": ["alertname", "indicator"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "webhook",
                "webhook_configs": [{"url": webhook_url, "send_resolved": True}],
            }
        ],
    }


@pytest.fixture
def alertmanager(
    webhook_receiver: RecordingReceiver, tmp_path: Path
) -> Iterator[RunningAlertmanager]:
    """A real Alertmanager routing every alert to ``webhook_receiver``; its log stays in
    ``tmp_path/alertmanager``."""
    missing = None
    try:
        find_alertmanager()
    except AlertmanagerNotFoundError as exc:
        missing = str(exc)
    if missing is not None:  # fail, never skip: the e2e tier is about the real binary
        pytest.fail(missing, pytrace=False)
    config = alertmanager_config(webhook_receiver.url + WEBHOOK_PATH)
    with running_alertmanager(config, tmp_path / "alertmanager", retention="1h") as running:
        yield running
