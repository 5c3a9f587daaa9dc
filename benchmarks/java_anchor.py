"""The anchor: Apache Kafka's own Java perf tools from the cached jars, on the broker measured.

``ProducerPerformance`` publishes records of the upstream messages' mean size as fast as it
can (acks=all, idempotent where the broker allows it, batches of up to 256 KiB as the
services' ``BatchPublisher``); ``ConsumerPerformance`` then reads them back. Their figures
are what Kafka's reference clients carry on this machine and broker; each stage is also given
as a ratio to them."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from benchmarks.pass_through import bench_topic
from services.common.apache_kafka import tool_command
from services.common.config import KafkaSettings
from services.common.publishing import BATCH_BYTES, MAX_REQUEST_BYTES

PRODUCER = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER = "org.apache.kafka.tools.ConsumerPerformance"

_PRODUCER_SUMMARY = re.compile(
    r"(?P<records>\d+) records sent, (?P<per_s>[\d.]+) records/sec \((?P<mb_s>[\d.]+) MB/sec\), "
    r"(?P<avg_ms>[\d.]+) ms avg latency, (?P<max_ms>[\d.]+) ms max latency, "
    r"(?P<p50_ms>\d+) ms 50th, (?P<p95_ms>\d+) ms 95th, (?P<p99_ms>\d+) ms 99th"
)


def parse_producer(output: str) -> dict[str, float]:
    """The final summary line of ``ProducerPerformance`` (the progress lines have no 50th)."""
    found = list(_PRODUCER_SUMMARY.finditer(output))
    if not found:
        raise ValueError(f"no ProducerPerformance summary in: {output[-300:]!r}")
    figures = found[-1].groupdict()
    return {key: float(value) for key, value in figures.items()}


def parse_consumer(output: str) -> dict[str, float]:
    """``ConsumerPerformance``'s header and result line (without ``--show-detailed-stats``),
    by column name; ``fetch.nMsg.sec`` leaves the group join out, as the stages' rates do."""
    lines = [line for line in output.splitlines() if line.strip()]
    header_at = next((i for i, line in enumerate(lines) if line.startswith("start.time")), None)
    if header_at is None or header_at + 1 >= len(lines):
        raise ValueError(f"no ConsumerPerformance result in: {output[-300:]!r}")
    names = [name.strip() for name in lines[header_at].split(",")]
    values = [value.strip() for value in lines[header_at + 1].split(",")]
    row = dict(zip(names, values, strict=True))
    return {
        "records": float(row["data.consumed.in.nMsg"]),
        "per_s": float(row["nMsg.sec"]),
        "fetch_per_s": float(row["fetch.nMsg.sec"]),
        "rebalance_ms": float(row["rebalance.time.ms"]),
        "mb_s": float(row["MB.sec"]),
    }


async def _run(argv: list[str]) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{argv[4]} exited with {process.returncode}: {err.decode()[-500:]}")
    return out.decode()


async def java_anchors(
    kafka: KafkaSettings, *, records: int, record_size: int, tag: str
) -> dict[str, dict[str, float]]:
    """Produce ``records`` of ``record_size`` bytes to a topic of their own, then consume them
    in a group of their own: the two tools' figures."""
    topic = await bench_topic(kafka, f"anchor.{tag}")
    producer = await _run(
        tool_command(
            PRODUCER,
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--record-size",
            str(record_size),
            "--throughput",
            "-1",
            "--bootstrap-server",
            kafka.bootstrap_servers,
            "--command-property",
            "acks=all",
            f"enable.idempotence={str(kafka.enable_idempotence).lower()}",
            f"batch.size={BATCH_BYTES}",  # as the services' BatchPublisher (Java's default: 16 KiB)
            f"max.request.size={MAX_REQUEST_BYTES}",
        )
    )
    consumer = await _run(
        tool_command(
            CONSUMER,
            "--bootstrap-server",
            kafka.bootstrap_servers,
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--group",
            f"bench-anchor-{tag}",
        )
    )
    return {"producer": parse_producer(producer), "consumer": parse_consumer(consumer)}


def anchor_summary(figures: dict[str, Any]) -> str:
    return (
        f"  Java producer {figures['producer']['per_s']:,.0f} records/s, consumer "
        f"{figures['consumer']['fetch_per_s']:,.0f} records/s (fetching)"
    )
