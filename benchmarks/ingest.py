"""``make bench-ingest``: one ingest process against the embedded broker, with a ceiling.

Pre-loads N small valid events into the three upstream topics, then measures in one run:

1. a bare aiokafka pass-through (consume, re-publish the same bytes with ``send()``, commit);
2. the same pass-through publishing with batches (``send_batch``, as ingest does);
3. ``roadmap-monitor run ingest`` as a separate process, its progress read from ``/metrics``.

Each rate is taken between the first and the last processed message, so start-up (the consumer
group join) is not counted. Figures are printed and written to ``docs/benchmarks/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.events import valid_events
from benchmarks.machine import describe
from benchmarks.process_stats import cpu_seconds, peak_rss_mib
from benchmarks.report import write_report
from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, UPSTREAM_TOPIC_BY_TYPE, TopicSpec
from services.common.config import KafkaSettings
from services.common.embedded_broker import EmbeddedBroker, free_port
from services.common.publishing import BatchPublisher, OutboundRecord
from services.common.topics import ensure_topics

PREFIX = "bench."
FETCH_RECORDS = 1000


@dataclass
class StageResult:
    name: str
    events: int
    seconds: float
    events_per_s: float
    cpu_s: float | None = None
    peak_rss_mib: float | None = None


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


async def _preload(kafka: KafkaSettings, count: int) -> float:
    publisher = BatchPublisher(kafka, client_id="bench-loader")
    await publisher.start()
    started = time.perf_counter()
    chunk: list[OutboundRecord] = []
    try:
        for n, (event_type, value) in enumerate(valid_events(count), start=1):
            topic = kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[event_type])
            chunk.append(OutboundRecord(topic, None, value))
            if len(chunk) == 5000 or n == count:
                await publisher.publish(chunk)
                chunk = []
                if n % 50_000 == 0 or n == count:
                    _say(f"  pre-loaded {n:,}/{count:,}")
    finally:
        await publisher.stop()
    return count / (time.perf_counter() - started)


Forward = Callable[[Sequence[Any]], Awaitable[None]]


async def _pass_through(kafka: KafkaSettings, count: int, *, batched: bool) -> StageResult:
    """Consume the upstream topics and re-publish every value unchanged, committing per batch."""
    upstream = [kafka.topic_name(spec) for spec in UPSTREAM_TOPIC_BY_TYPE.values()]
    sink = kafka.topic_name(CANONICAL_EVENTS) + (".batched" if batched else ".plain")
    await ensure_topics(kafka, [_sink_spec(sink)])
    consumer = AIOKafkaConsumer(
        *upstream,
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=f"bench-pass-through-{'batched' if batched else 'plain'}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    publisher = BatchPublisher(kafka, client_id="bench-pass-through")
    await consumer.start()
    await producer.start()
    await publisher.start()
    done, first, last = 0, 0.0, 0.0
    try:
        while done < count:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=FETCH_RECORDS)
            records = [record for batch in fetched.values() for record in batch]
            if not records:
                continue
            if not first:
                first = time.perf_counter()
            if batched:
                await publisher.publish([OutboundRecord(sink, r.key, r.value) for r in records])
            else:
                futures = [await producer.send(sink, r.value, key=r.key) for r in records]
                await asyncio.gather(*futures)
            await consumer.commit()
            done += len(records)
            last = time.perf_counter()
    finally:
        await publisher.stop()
        await producer.stop()
        await consumer.stop()
    name = "pass-through, batched send" if batched else "pass-through, send() per record"
    return StageResult(name, done, last - first, done / (last - first))


def _sink_spec(name: str) -> TopicSpec:
    return TopicSpec(
        name=name[len(PREFIX) :],
        key="-",
        value=bytes,
        producer="bench",
        consumers=(),
        description="benchmark sink",
    )


def _received(metrics_text: str) -> int:
    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "roadmap_ingest_events_received":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return int(total)


async def _ingest(kafka: KafkaSettings, count: int, log_path: Path) -> StageResult:
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": PREFIX,
        "INGEST_HTTP_PORT": str(port),
        "INGEST_GROUP_ID": "bench-ingest",
        "INGEST_LOG_LEVEL": "WARNING",
    }
    cli = Path(sys.executable).with_name("roadmap-monitor")
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            str(cli), "run", "ingest", env=env, stdout=log, stderr=log
        )
    try:
        seen = first_seen = 0
        first = last = 0.0
        cpu_at_first = 0.0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 600
            while seen < count and time.monotonic() < deadline:
                if process.returncode is not None:
                    raise RuntimeError(f"ingest exited with {process.returncode}; see {log_path}")
                try:
                    seen = _received((await client.get("/metrics")).text)
                except httpx.HTTPError:
                    seen = 0
                now = time.perf_counter()
                if seen and not first:
                    first, first_seen, cpu_at_first = now, seen, cpu_seconds(process.pid)
                last = now
                if seen and seen % 50_000 < 2_000:
                    _say(f"  ingest processed {seen:,}/{count:,}")
                await asyncio.sleep(0.05)
        if seen < count:
            raise RuntimeError(f"ingest processed only {seen} of {count}; see {log_path}")
        cpu = cpu_seconds(process.pid) - cpu_at_first
        rss = peak_rss_mib(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)
    events = count - first_seen
    return StageResult(
        "ingest (validate, normalise, dedup, publish)",
        events,
        last - first,
        events / (last - first),
        cpu_s=round(cpu, 2),
        peak_rss_mib=rss,
    )


async def run(count: int, out_dir: Path) -> dict[str, Any]:
    machine = describe()
    _say(
        f"machine: {machine['cores']} cores, {machine['memory_gib']} GiB, {machine['cpu']}; "
        f"Python {machine['python']}, aiokafka {machine['aiokafka']} "
        f"(C extension: {machine['aiokafka_c_extension']}), broker {machine['broker']}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="bench-ingest-") as scratch,
        EmbeddedBroker(free_port(), log_path=Path(scratch) / "broker.log") as broker,
    ):
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic_prefix=PREFIX)
        await ensure_topics(
            kafka, [*UPSTREAM_TOPIC_BY_TYPE.values(), CANONICAL_EVENTS, DEAD_LETTERS]
        )
        _say(f"pre-loading {count:,} valid events (3 partitions per topic)")
        load_rate = await _preload(kafka, count)
        stages = []
        for batched in (False, True):
            _say("measuring " + ("batched" if batched else "plain") + " pass-through")
            stages.append(await _pass_through(kafka, count, batched=batched))
            _say(f"  {stages[-1].events_per_s:,.0f} events/s")
        _say("measuring ingest")
        stages.append(await _ingest(kafka, count, Path(scratch) / "ingest.log"))
        _say(f"  {stages[-1].events_per_s:,.0f} events/s")
    ingest = stages[-1]
    result = {
        "benchmark": "ingest",
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "events": count,
        "machine": machine,
        "preload_events_per_s": round(load_rate),
        "stages": [asdict(stage) for stage in stages],
        "ratio_to_plain_pass_through": round(ingest.events_per_s / stages[0].events_per_s, 2),
        "ratio_to_batched_pass_through": round(ingest.events_per_s / stages[1].events_per_s, 2),
    }
    write_report(result, out_dir)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.events, args.out))
    _say(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
