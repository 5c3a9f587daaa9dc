"""The brokers ``make bench`` runs on: Apache Kafka (first) and the embedded broker (Tansu)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.machine import tansu_version
from benchmarks.process_stats import cpu_seconds, peak_rss_mib, rss_mib
from services.common.apache_kafka import KafkaBroker
from services.common.embedded_broker import EmbeddedBroker

BROKERS = ("kafka", "embedded")

KAFKA_PROPERTIES = {
    # Topics are created by the benchmark (ensure_topics), never by a producer's first send.
    "auto.create.topics.enable": "false",
    # Kafka's default instead of TEST_TUNING's 0: two ingest processes started together join
    # the group's first generation, instead of the first taking every message before the
    # second joins. Every rate is timed from the first record taken, so the wait is not in it.
    "group.initial.rebalance.delay.ms": "3000",
}
"""Added to ``KafkaBroker``'s own configuration, after its test tuning (``TEST_TUNING``)."""


@dataclass(frozen=True)
class BrokerUnderTest:
    """A running broker: where clients connect, its processes, and what the services may ask of
    it (Tansu refuses InitProducerId, so no idempotent producer there)."""

    name: str
    description: str
    bootstrap_servers: str
    pids: tuple[int, ...]
    idempotence: bool
    java_tools: bool
    """Whether Kafka's Java perf tools run on it (on Tansu 0.6 the producer tool hung)."""

    def usage(self) -> dict[str, float]:
        """Peak and current resident memory (MiB) and CPU seconds so far, over its processes."""
        return {
            "peak_rss_mib": round(sum(peak_rss_mib(pid) for pid in self.pids), 1),
            "rss_mib": round(sum(rss_mib(pid) for pid in self.pids), 1),
            "cpu_s": round(sum(cpu_seconds(pid) for pid in self.pids), 1),
        }


@contextmanager
def running_broker(name: str, log_dir: Path) -> Iterator[BrokerUnderTest]:
    """Start the broker called ``name`` (one of ``BROKERS``), logging under ``log_dir``."""
    if name == "kafka":
        with KafkaBroker(properties=KAFKA_PROPERTIES, log_path=log_dir / "kafka.log") as kafka:
            yield BrokerUnderTest(
                name,
                f"{kafka.description} (KRaft, one node, {kafka.heap} heap)",
                kafka.bootstrap_servers,
                tuple(kafka.pids().values()),
                idempotence=True,
                java_tools=True,
            )
    elif name == "embedded":
        with EmbeddedBroker(log_path=log_dir / "embedded.log") as embedded:
            yield BrokerUnderTest(
                name,
                f"{tansu_version()} (embedded, memory-only)",
                embedded.bootstrap_servers,
                (embedded.pid or 0,),
                idempotence=False,
                java_tools=False,
            )
    else:
        raise ValueError(f"unknown broker {name!r}; choose from {', '.join(BROKERS)}")
