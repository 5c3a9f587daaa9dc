"""The whole-pipeline benchmark's stages on one broker: the burst through the three service
processes, the latency at a steady rate, and metrics replaying alone."""

from __future__ import annotations

import asyncio
import re
import time
from asyncio.subprocess import Process
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.events import PipelineStream, valid_events
from benchmarks.pipeline_report import percentiles
from benchmarks.process_stats import cpu_seconds, peak_rss_mib
from benchmarks.report import say
from benchmarks.service_process import counter_total, spawn, stop, until_ready
from benchmarks.steady_rate import delays_at_rate
from contracts.events import EventType
from contracts.topics import UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.publishing import BatchPublisher, OutboundRecord

PREFIX = "bench."
SERVICES = ("ingest", "metrics", "alerts")
SAMPLE_EVERY_S = 0.1
PUBLISH_CHUNK = 2000
GIVE_UP_AFTER_S = 1800


@dataclass
class Running:
    """The three service processes of the run and a client for each one's HTTP port."""

    processes: dict[str, Process]
    clients: dict[str, httpx.AsyncClient]
    log_dir: Path

    async def scrape(self, service: str) -> str:
        if self.processes[service].returncode is not None:
            raise RuntimeError(
                f"{service} exited with {self.processes[service].returncode}; "
                f"see {self.log_dir / service}.log"
            )
        return (await self.clients[service].get("/metrics")).text


@dataclass
class Sample:
    """Counters of the three services at one moment of the burst (seconds since the start)."""

    at_s: float
    published: int
    ingested: int
    folded: int
    snapshots_to_alerts: int


@dataclass
class Burst:
    samples: list[Sample] = field(default_factory=list)
    published_at_s: float = 0.0


def _records(
    kafka: KafkaSettings, messages: Sequence[tuple[EventType, bytes]]
) -> list[OutboundRecord]:
    return [
        OutboundRecord(kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[event_type]), None, value)
        for event_type, value in messages
    ]


@asynccontextmanager
async def services_running(kafka: KafkaSettings, log_dir: Path) -> AsyncIterator[Running]:
    """The three services as processes on ``kafka``, ready; stopped on the way out."""
    processes: dict[str, Process] = {}
    clients: dict[str, httpx.AsyncClient] = {}
    try:
        yield await _start_services(kafka, log_dir, processes, clients)
    finally:
        for client in clients.values():
            await client.aclose()
        for process in processes.values():
            await stop(process)


async def _start_services(
    kafka: KafkaSettings,
    log_dir: Path,
    processes: dict[str, Process],
    clients: dict[str, httpx.AsyncClient],
) -> Running:
    for service in SERVICES:
        port = free_port()
        processes[service] = await spawn(
            service,
            kafka,
            {"HTTP_PORT": str(port), "LOG_FORMAT": "text"},
            log_dir / f"{service}.log",
        )
        clients[service] = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
    running = Running(processes, clients, log_dir)
    for service in SERVICES:
        await until_ready(processes[service], clients[service], log=log_dir / f"{service}.log")
        say(f"  {service} ready")
    return running


async def _counters(running: Running) -> tuple[int, int, int, int]:
    """(ingest received, ingest accepted, metrics folded, alerts KPI snapshots consumed)."""
    ingest = await running.scrape("ingest")
    folded = counter_total(await running.scrape("metrics"), "roadmap_metrics_events")
    snapshots = counter_total(await running.scrape("alerts"), "roadmap_alerts_kpi_snapshots")
    return (
        counter_total(ingest, "roadmap_ingest_events_received"),
        counter_total(ingest, "roadmap_ingest_events_accepted"),
        folded,
        snapshots,
    )


async def burst(kafka: KafkaSettings, running: Running, stream: PipelineStream) -> dict[str, Any]:
    count = len(stream.messages)
    records = _records(kafka, stream.messages)
    publisher = BatchPublisher(kafka, service="bench-upstream")
    await publisher.start()
    result = Burst(samples=[Sample(0.0, 0, 0, 0, 0)])
    published = 0
    start = time.perf_counter()

    async def publish() -> None:
        nonlocal published
        for i in range(0, len(records), PUBLISH_CHUNK):
            chunk = records[i : i + PUBLISH_CHUNK]
            await publisher.publish(chunk)
            published += len(chunk)
        result.published_at_s = time.perf_counter() - start

    say("burst: publishing upstream while sampling every service's /metrics")
    producer = asyncio.create_task(publish())
    next_report = count // 10
    try:
        while True:
            received, accepted, folded, snapshots = await _counters(running)
            result.samples.append(
                Sample(time.perf_counter() - start, published, received, folded, snapshots)
            )
            if received >= next_report:
                say(f"  published {published:,}, ingest {received:,}, metrics folded {folded:,}")
                next_report += count // 10
            if received >= count and folded >= accepted and producer.done():
                break
            if time.perf_counter() - start > GIVE_UP_AFTER_S:
                raise RuntimeError(f"pipeline did not drain in {GIVE_UP_AFTER_S} s")
            await asyncio.sleep(SAMPLE_EVERY_S)
        await producer
        await _until_alerts_has_every_snapshot(running, result, start)
    finally:
        await publisher.stop()
    return _burst_figures(result, stream.kinds, count, accepted)


SNAPSHOTS_SETTLED_S = 3.0


async def _until_alerts_has_every_snapshot(running: Running, result: Burst, start: float) -> None:
    """Alerts follows metrics' KPI snapshots, which come at most once a second per indicator:
    wait until metrics has published nothing new for a while and alerts has taken all of it."""
    last = result.samples[-1]
    published, changed = -1, time.perf_counter()
    while True:
        now_published = counter_total(
            await running.scrape("metrics"), "roadmap_metrics_kpi_snapshots"
        )
        taken = counter_total(await running.scrape("alerts"), "roadmap_alerts_kpi_snapshots")
        now = time.perf_counter()
        if now_published != published:
            published, changed = now_published, now
        result.samples.append(
            Sample(now - start, last.published, last.ingested, last.folded, taken)
        )
        if taken >= published and now - changed >= SNAPSHOTS_SETTLED_S:
            return
        if now - start > GIVE_UP_AFTER_S:
            raise RuntimeError(f"alerts took {taken} of {published} KPI snapshots")
        await asyncio.sleep(SAMPLE_EVERY_S)


def _first_and_last_move(samples: list[Sample], value: str) -> tuple[Sample, Sample]:
    first = next((s for s in samples if getattr(s, value) > 0), samples[-1])
    final = getattr(samples[-1], value)
    last = next(s for s in samples if getattr(s, value) >= final)
    return first, last


def _rate(samples: list[Sample], value: str) -> tuple[int, float]:
    first, last = _first_and_last_move(samples, value)
    moved = getattr(last, value) - getattr(first, value)
    seconds = max(last.at_s - first.at_s, SAMPLE_EVERY_S)
    return getattr(last, value), moved / seconds


def _burst_figures(
    result: Burst, kinds: dict[str, int], count: int, accepted: int
) -> dict[str, Any]:
    samples = result.samples
    ingested, ingest_rate = _rate(samples, "ingested")
    folded, metrics_rate = _rate(samples, "folded")
    _, metrics_done = _first_and_last_move(samples, "folded")
    snapshots, _ = _rate(samples, "snapshots_to_alerts")
    _, alerts_done = _first_and_last_move(samples, "snapshots_to_alerts")
    return {
        "messages": count,
        "kinds": kinds,
        "canonical_events": accepted,
        "publish_events_per_s": round(count / result.published_at_s),
        "ingest_events_per_s": round(ingest_rate),
        "metrics_events_per_s": round(metrics_rate),
        "pipeline_events_per_s": round(count / metrics_done.at_s),
        "pipeline_seconds": round(metrics_done.at_s, 1),
        "alerts_kpi_snapshots": snapshots,
        "alerts_done_after_metrics_s": round(alerts_done.at_s - metrics_done.at_s, 2),
        "ingested": ingested,
        "folded": folded,
        "samples": [
            [round(s.at_s, 2), s.published, s.ingested, s.folded, s.snapshots_to_alerts]
            for s in samples
        ],
    }


async def latency(
    kafka: KafkaSettings, running: Running, *, rate: int, seconds: int
) -> dict[str, Any]:
    """Publish ``rate`` new valid events/s in 10 ms ticks; each one's delay until a scrape of
    metrics shows it folded."""
    total = rate * seconds
    messages = [
        (event_type, value.replace(b'"bench-', b'"late-').replace(b'"S0', b'"L0'))
        for event_type, value in valid_events(total, seed=4242)
    ]
    records = _records(kafka, messages)
    already = counter_total(await running.scrape("metrics"), "roadmap_metrics_events")
    publisher = BatchPublisher(kafka, service="bench-latency")
    await publisher.start()
    say(f"latency: {total:,} new events at {rate:,}/s, upstream publish to metrics' /metrics")

    async def folded() -> int:
        text = await running.scrape("metrics")
        return counter_total(text, "roadmap_metrics_events") - already

    try:
        delays = await delays_at_rate(
            publisher, records, rate=rate, visible=folded, give_up_after_s=seconds + 300
        )
    finally:
        await publisher.stop()
    return {"rate_per_s": rate, "events": total, **percentiles(delays), "delays_s": delays}


async def metrics_alone(
    kafka: KafkaSettings, canonical: int, log_dir: Path, *, group: str
) -> dict[str, Any]:
    """A second metrics process, in its own group, replays the canonical topic from the start.

    Its progress is read from ``/readyz`` ("replaying partitions [...]: N records to go"),
    which costs the service nothing: scraping ``/metrics`` ten times a second, which computes
    every reading, took a tenth of its CPU. ``/metrics`` is read once, at the end."""
    port = free_port()
    process = await spawn(
        "metrics",
        kafka,
        {"HTTP_PORT": str(port), "GROUP_ID": group, "LOG_FORMAT": "text"},
        log_dir / "metrics-alone.log",
    )
    say(f"metrics alone: replaying {canonical:,} canonical events")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            first_at = first_left = done_at = 0.0
            deadline = time.monotonic() + GIVE_UP_AFTER_S
            while not done_at:
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"metrics replay failed; see {log_dir}/metrics-alone.log")
                try:
                    answer = await client.get("/readyz")
                except httpx.HTTPError:
                    await asyncio.sleep(SAMPLE_EVERY_S)
                    continue
                now = time.perf_counter()
                left = _records_to_go(answer)
                if answer.status_code == 200 and first_at:
                    done_at = now
                elif left is not None and not first_at:
                    first_at, first_left = now, left  # the replay starts at the assignment
                await asyncio.sleep(SAMPLE_EVERY_S / 5)
            folded = counter_total((await client.get("/metrics")).text, "roadmap_metrics_events")
            cpu = cpu_seconds(process.pid)
            rss = peak_rss_mib(process.pid)
    finally:
        await stop(process)
    if folded < canonical:
        raise RuntimeError(f"metrics folded {folded:,} of {canonical:,} canonical events")
    rate = first_left / max(done_at - first_at, SAMPLE_EVERY_S)
    say(f"  {rate:,.0f} events/s")
    return {
        "events": folded,
        "events_per_s": round(rate),
        "cpu_s": round(cpu, 1),
        "peak_rss_mib": rss,
    }


_TO_GO = re.compile(r"(\d+) records to go")


def _records_to_go(answer: httpx.Response) -> int | None:
    """How many records metrics' ``/readyz`` says are left to replay, if it says so."""
    found = _TO_GO.search(answer.text)
    return int(found.group(1)) if found else None


async def publish_upstream(
    kafka: KafkaSettings, messages: Sequence[tuple[EventType, bytes]]
) -> None:
    """Publish ``messages`` to the upstream topics of ``kafka``, batched, before a measurement."""
    publisher = BatchPublisher(kafka, service="bench-upstream")
    await publisher.start()
    try:
        records = _records(kafka, messages)
        for i in range(0, len(records), PUBLISH_CHUNK):
            await publisher.publish(records[i : i + PUBLISH_CHUNK])
    finally:
        await publisher.stop()
