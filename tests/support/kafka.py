"""Which real Kafka-protocol broker the ``connected`` tier talks to.

In order: ``KAFKA_BOOTSTRAP_SERVERS`` if set; a testcontainers Kafka when a Docker engine
answers; else the embedded Tansu broker (the same code as ``roadmap-monitor broker``).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from contracts.topics import TopicSpec


@dataclass(frozen=True, slots=True)
class RealBroker:
    bootstrap_servers: str
    kind: str  # "external", "testcontainers" or "embedded"


def docker_engine_answers() -> bool:
    """True when a Docker engine (not just the client) responds to a ping."""
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no engine"
        return False


@contextlib.contextmanager
def real_broker(log_dir: Path) -> Iterator[RealBroker]:
    """Yield a running broker chosen as described in the module docstring; stop it afterwards."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield RealBroker(external, "external")
        return
    if docker_engine_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield RealBroker(container.get_bootstrap_server(), "testcontainers")
        return
    from services.common.embedded_broker import EmbeddedBroker

    with EmbeddedBroker(log_path=log_dir / "tansu.log") as broker:
        yield RealBroker(broker.bootstrap_servers, "embedded")


def scratch_topic(name: str) -> TopicSpec:
    """A TopicSpec for a test-only topic carrying raw bytes."""
    return TopicSpec(
        name=name,
        key="-",
        value=bytes,
        producer="test",
        consumers=("test",),
        description="test-only topic",
    )


def unique_name(prefix: str) -> str:
    """A topic or group name no other test uses."""
    return f"{prefix}.{uuid.uuid4().hex[:12]}"
