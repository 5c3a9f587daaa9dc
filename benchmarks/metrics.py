"""``make bench-metrics``: how fast and how lean the metrics service is. Recorded, not asserted.

1. Pure fold rate: ``apply_record`` on records already read, and reading them (``held_of``)
   from the canonical JSON plus the fold.
2. Service rate: ``roadmap-monitor run metrics`` replaying a pre-loaded canonical topic.
3. Event-to-``/metrics`` latency at a steady 1,000 events/s: each event's publish time against
   the first scrape (every 10 ms) whose folded-event count includes it.
4. Resident memory after replaying 1,000,000 shipments (``--shipments`` to change).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from asyncio.subprocess import Process
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.events import valid_events
from benchmarks.loading import preload
from benchmarks.machine import describe
from benchmarks.process_stats import cpu_seconds, peak_rss_mib, rss_mib
from benchmarks.report import say, write_table
from benchmarks.service_process import counter_total, spawn, stop
from benchmarks.steady_rate import delays_at_rate
from contracts.codec import Accepted, decode_event, encode_event
from contracts.events import EventType, event_adapter
from contracts.keys import canonical_key, partition_key
from contracts.roadmap.loader import load_roadmap
from contracts.topics import CANONICAL_EVENTS, KPI_SNAPSHOTS
from services.common.config import KafkaSettings
from services.common.embedded_broker import EmbeddedBroker, free_port
from services.common.publishing import BatchPublisher, OutboundRecord
from services.common.topics import ensure_topics
from services.metrics.canonical import held_of
from services.metrics.fold import PartitionState, apply_record
from services.metrics.plan import compile_roadmap


def fold_rates(count: int) -> dict[str, float]:
    """The fold (``apply_record`` on records already read) and reading plus fold, from the
    canonical JSON ingest writes (``held_of``), as the service does per record."""
    plan = compile_roadmap(load_roadmap("deploy/roadmap.yaml"))
    canonical = []
    for _, value in valid_events(count):
        result = decode_event(value)
        assert isinstance(result, Accepted)
        canonical.append(encode_event(result.event))
    started = time.perf_counter()
    held = [held_of(value) for value in canonical]
    read_s = time.perf_counter() - started
    state = PartitionState(plan)
    # The records are held here only to time the fold alone; in the service each lives for one
    # batch. Freezing them keeps the garbage collector from re-scanning 200,000 live objects
    # during the timed loop, which the service never has to do.
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    for event_type, key, record in held:
        apply_record(state, event_type, key, record)
    fold_s = time.perf_counter() - started
    gc.unfreeze()
    return {
        "events": count,
        "fold_events_per_s": round(count / fold_s),
        "read_events_per_s": round(count / read_s),
        "read_and_fold_events_per_s": round(count / (fold_s + read_s)),
    }


def _records(kafka: KafkaSettings, values: Sequence[bytes]) -> list[OutboundRecord]:
    """The canonical records ingest would publish for ``values``: canonical JSON and keys."""
    topic = kafka.topic_name(CANONICAL_EVENTS)
    records = []
    for value in values:
        event = event_adapter.validate_json(value)
        records.append(
            OutboundRecord(
                topic, canonical_key(event), encode_event(event), partition_key=partition_key(event)
            )
        )
    return records


def _folded(text: str) -> int:
    return counter_total(text, "roadmap_metrics_events")


async def _until_folded(
    client: httpx.AsyncClient, process: Process, count: int, *, poll_s: float = 0.05
) -> tuple[float, float, int]:
    """(first time > 0, time == count, count at first) while polling ``/metrics``."""
    first = 0.0
    first_count = 0
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"metrics exited with {process.returncode}")
        try:
            folded = _folded((await client.get("/metrics")).text)
        except httpx.HTTPError:
            folded = 0
        now = time.perf_counter()
        if folded and not first:
            first, first_count = now, folded
        if folded >= count:
            return first, now, first_count
        await asyncio.sleep(poll_s)
    raise RuntimeError("metrics did not fold everything in time")


async def service_rate_and_latency(
    kafka: KafkaSettings, count: int, log_dir: Path, *, rate: int, seconds: int
) -> dict[str, Any]:
    values = [value for _, value in valid_events(count, seed=11)]
    say(f"loading {count:,} canonical events")
    await preload(kafka, _records(kafka, values), len(values))
    port = free_port()
    process = await spawn(
        "metrics",
        kafka,
        {"HTTP_PORT": str(port), "GROUP_ID": "bench-metrics-service"},
        log_dir / "metrics.log",
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            first, done, first_count = await _until_folded(client, process, count)
            cpu = cpu_seconds(process.pid)
            replay = (count - first_count) / max(done - first, 0.05)
            say(f"  replayed at {replay:,.0f} events/s")
            latencies = await _latency(kafka, client, count, rate=rate, seconds=seconds)
    finally:
        await stop(process)
    ordered = sorted(latencies)
    return {
        "replay_events": count,
        "replay_events_per_s": round(replay),
        "replay_cpu_s": round(cpu, 2),
        "latency_rate_per_s": rate,
        "latency_events": len(ordered),
        "latency_p50_ms": round(statistics.median(ordered) * 1000, 1),
        "latency_p95_ms": round(ordered[int(len(ordered) * 0.95)] * 1000, 1),
        "latency_p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 1),
        "latency_max_ms": round(ordered[-1] * 1000, 1),
    }


async def _latency(
    kafka: KafkaSettings, client: httpx.AsyncClient, already: int, *, rate: int, seconds: int
) -> list[float]:
    """Publish ``rate`` events/s in 10 ms ticks; each one's delay until a scrape shows it."""
    total = rate * seconds
    values = [value for _, value in valid_events(total, seed=12)]
    # distinct ids from the replayed set: a new seed reuses ids, so rename them
    values = [v.replace(b'"bench-', b'"late-').replace(b'"S0', b'"L0') for v in values]
    records = _records(kafka, values)
    publisher = BatchPublisher(kafka, service="bench-latency")
    await publisher.start()
    say(f"measuring latency: {total:,} events at {rate:,}/s")

    async def folded() -> int:
        return _folded((await client.get("/metrics")).text) - already

    try:
        return await delays_at_rate(
            publisher, records, rate=rate, visible=folded, give_up_after_s=seconds + 600
        )
    finally:
        await publisher.stop()


def _distinct_shipments(kafka: KafkaSettings, shipments: int) -> Iterator[OutboundRecord]:
    """``shipments`` canonical shipments with distinct ids, generated 100,000 at a time (the
    generator repeats its ids, so each block gets its own prefix)."""
    chunk = 100_000
    for start in range(0, shipments, chunk):
        values = [
            v.replace(b'"bench-', f'"m{start // chunk}-'.encode()).replace(
                b'"S0', f'"M{start // chunk}-'.encode()
            )
            for _, v in valid_events(min(chunk, shipments - start), only=EventType.TRADE_SHIPMENT)
        ]
        yield from _records(kafka, values)


async def memory_after_shipments(
    kafka: KafkaSettings, shipments: int, log_dir: Path
) -> dict[str, Any]:
    shipment_kafka = kafka.model_copy(update={"topic_prefix": kafka.topic_prefix + "mem."})
    await ensure_topics(shipment_kafka, [CANONICAL_EVENTS, KPI_SNAPSHOTS])
    say(f"loading {shipments:,} canonical shipments")
    await preload(shipment_kafka, _distinct_shipments(shipment_kafka, shipments), shipments)
    port = free_port()
    process = await spawn(
        "metrics",
        shipment_kafka,
        {"HTTP_PORT": str(port), "GROUP_ID": "bench-metrics-memory"},
        log_dir / "memory.log",
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            first, done, first_count = await _until_folded(client, process, shipments, poll_s=1.0)
            held = await client.get("/metrics")
        rss, peak = rss_mib(process.pid), peak_rss_mib(process.pid)
    finally:
        await stop(process)
    entities = 0
    for family in text_string_to_metric_families(held.text):
        if family.name == "roadmap_metrics_entities":
            entities = int(sum(s.value for s in family.samples))
    return {
        "shipments": shipments,
        "entities_held": entities,
        "rss_mib_after_replay": rss,
        "peak_rss_mib": peak,
        # None when the replay was over by the first poll (a small --shipments): no rate to take
        "replay_events_per_s": (
            round((shipments - first_count) / (done - first)) if done > first else None
        ),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    machine = describe()
    say(f"machine: {machine['cores']} cores, {machine['memory_gib']} GiB")
    say(f"pure fold over {args.fold_events:,} events")
    result: dict[str, Any] = {
        "benchmark": "metrics",
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine,
        "fold": fold_rates(args.fold_events),
    }
    say(f"  {result['fold']}")
    with (
        tempfile.TemporaryDirectory(prefix="bench-metrics-") as scratch,
        EmbeddedBroker(free_port(), log_path=Path(scratch) / "broker.log") as broker,
    ):
        kafka = KafkaSettings(
            bootstrap_servers=broker.bootstrap_servers,
            topic_prefix="bench.",
            enable_idempotence=False,  # the embedded broker refuses it
        )
        await ensure_topics(kafka, [CANONICAL_EVENTS, KPI_SNAPSHOTS])
        result["service"] = await service_rate_and_latency(
            kafka, args.events, Path(scratch), rate=args.rate, seconds=args.seconds
        )
        say(f"  {result['service']}")
        result["memory"] = await memory_after_shipments(kafka, args.shipments, Path(scratch))
        say(f"  {result['memory']}")
    write_table(result, args.out)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-metrics", description=__doc__.splitlines()[0])
    parser.add_argument("--fold-events", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=100_000, help="replayed by the service")
    parser.add_argument("--rate", type=int, default=1000, help="events/s for the latency run")
    parser.add_argument("--seconds", type=int, default=30, help="length of the latency run")
    parser.add_argument("--shipments", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
