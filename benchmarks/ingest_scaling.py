"""Ingest on its own: one process, two processes in one group, and ``POST /v1/events``.

Each measurement gets topics of its own (a prefix per run) on the broker measured. Over
Kafka, the scaling is measured on upstream topics of ``SCALING_PARTITIONS`` partitions each,
which two processes split evenly; with the default 3 per topic, 9 partitions split 5 to 4 and
the process with the larger share (and whichever joined first and read alone meanwhile) is
still working after the other has finished, so the figure measured the split more than
ingest (1.26-1.55 times over the day's runs, against 1.65-1.74 on 6 partitions a topic); that
case is measured too, as its own row. The messages are published first, so no producer
shares the two cores while ingest is timed; the clock starts once every ingest process has
taken messages (its ``/metrics``) and stops when the group's committed offsets cover them all
(asked of the broker in one request a sample, not of ingest, whose ``/metrics`` ten times a
second would cost it CPU).
The count is checked against ``roadmap_ingest_events_received_total`` at the end.
"""

from __future__ import annotations

import asyncio
import json
import time
from asyncio.subprocess import Process
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.events import valid_events
from benchmarks.process_stats import rss_mib
from benchmarks.report import say
from benchmarks.service_process import counter_total, spawn, stop, until_ready
from contracts.events import EventType
from contracts.publishers import new_token, token_sha256
from contracts.topics import TOPICS, UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.kafka import client_options
from services.common.publishing import BatchPublisher, OutboundRecord
from services.common.topics import ensure_topics

SCALING_PARTITIONS = 6
"""Partitions per upstream topic when one and two processes are compared: a multiple of 2."""
SAMPLE_EVERY_S = 0.1
GIVE_UP_AFTER_S = 900
HTTP_BATCH = 1000
HTTP_CLIENTS = 2


async def _ingests(
    kafka: KafkaSettings,
    count: int,
    log_dir: Path,
    name: str,
    *,
    wait_ready: bool = True,
    settings: dict[str, str] | None = None,
) -> tuple[list[Process], list[httpx.AsyncClient]]:
    processes, clients = [], []
    for n in range(count):
        port = free_port()
        log = log_dir / f"{name}-{n}.log"
        process = await spawn(
            "ingest",
            kafka,
            {
                "HTTP_PORT": str(port),
                "GROUP_ID": f"{name}-group",
                "LOG_FORMAT": "text",
                **(settings or {}),
            },
            log,
        )
        processes.append(process)
        clients.append(httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60))
    if wait_ready:
        for process, client, n in zip(processes, clients, range(count), strict=True):
            await until_ready(process, client, log=log_dir / f"{name}-{n}.log")
    return processes, clients


async def _received(clients: Sequence[httpx.AsyncClient]) -> int:
    texts = [(await c.get("/metrics")).text for c in clients]
    return sum(counter_total(t, "roadmap_ingest_events_received") for t in texts)


class _GroupProgress:
    """The group's committed offsets over ``partitions``, summed: messages it has finished.

    One OffsetFetch request for all of them each time (a consumer's ``committed()`` asks for
    one partition a request: 18 requests every sample, on the broker and the cores the
    processes being measured share)."""

    def __init__(self, kafka: KafkaSettings, group: str, partitions: Sequence[TopicPartition]):
        self._admin = AIOKafkaAdminClient(
            **{**client_options(kafka), "client_id": "bench-progress"}
        )
        self._group = group
        self._partitions = list(partitions)
        self._coordinator: int | None = None

    async def start(self) -> None:
        await self._admin.start()
        self._coordinator = await self._admin.find_coordinator(self._group)

    async def stop(self) -> None:
        await self._admin.close()

    async def committed(self) -> int:
        offsets = await self._admin.list_consumer_group_offsets(
            self._group, self._coordinator, self._partitions
        )
        return sum(max(0, o.offset) for o in offsets.values())


async def kafka_ingest(
    base: KafkaSettings,
    messages: Sequence[tuple[EventType, bytes]],
    *,
    processes: int,
    log_dir: Path,
    partitions: int = SCALING_PARTITIONS,
    tag: str = "",
) -> dict[str, Any]:
    """``processes`` ingest processes in one group take ``messages``, published beforehand (as
    ``make bench-ingest`` does: no producer shares the cores while ingest is timed). The clock
    starts once every process has taken messages (a group join under way is not ingest's time)
    and stops when the group has committed them all. Upstream topics get ``partitions``
    partitions each; ``tag`` tells repeated runs apart (topics and group of their own)."""
    kafka = base.model_copy(
        update={
            "topic_prefix": f"bench.ingest{processes}p{partitions}{tag}.",
            "topic_partitions": partitions,
        }
    )
    await ensure_topics(kafka, TOPICS)
    records = [
        OutboundRecord(kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[t]), None, value)
        for t, value in messages
    ]
    publisher = BatchPublisher(kafka, service="bench-upstream")
    await publisher.start()
    try:
        await _publish(publisher, records)
    finally:
        await publisher.stop()
    say(
        f"ingest, {processes} process(es) in one group: {len(records):,} messages on "
        f"{partitions} partitions a topic"
    )
    name = f"ingest-x{processes}p{partitions}{tag}"
    upstream = [
        TopicPartition(kafka.topic_name(spec), p)
        for spec in UPSTREAM_TOPIC_BY_TYPE.values()
        for p in range(kafka.topic_partitions)
    ]
    progress = _GroupProgress(kafka, f"{name}-group", upstream)
    await progress.start()
    rss: dict[str, float] = {}
    marks = [len(records) * q // 4 for q in (1, 2, 3, 4)]
    running, clients = await _ingests(kafka, processes, log_dir, name, wait_ready=False)
    try:
        started_at, done_before = await _all_busy(running, clients, log_dir / f"{name}-0.log")
        deadline = time.monotonic() + GIVE_UP_AFTER_S
        while (committed := await progress.committed()) < len(records):
            while marks and committed >= marks[0]:
                rss[f"{marks.pop(0):,} events"] = rss_mib(running[0].pid)
            if time.monotonic() > deadline:
                raise RuntimeError(f"ingest committed {committed:,} of {len(records):,}")
            await asyncio.sleep(SAMPLE_EVERY_S / 2)
        seconds = time.perf_counter() - started_at
        while marks:
            rss[f"{marks.pop(0):,} events"] = rss_mib(running[0].pid)
        per_process = [await _received([client]) for client in clients]
        counted = sum(per_process)
        if counted < len(records):  # more: a rebalance handed a batch not yet committed over
            raise RuntimeError(f"ingest counted {counted:,} of {len(records):,} messages")
    finally:
        await progress.stop()
        for client in clients:
            await client.aclose()
        for process in running:
            await stop(process)
    rate = (len(records) - done_before) / seconds
    say(
        f"  {rate:,.0f} events/s; taken per process {per_process} ({done_before:,} before "
        f"all were busy); resident MiB of the first process after: {rss}"
    )
    return {
        "processes": processes,
        "partitions_per_topic": partitions,
        "events": len(records),
        "events_per_process": per_process,
        "taken_again_after_rebalance": counted - len(records),
        "committed_before_all_busy": done_before,
        "events_per_s": round(rate),
        "seconds": round(seconds, 2),
        "rss_mib_after": rss,
    }


async def _all_busy(
    running: Sequence[Process], clients: Sequence[httpx.AsyncClient], log: Path
) -> tuple[float, int]:
    """When every process has taken messages, and how many they had taken by then."""
    deadline = time.monotonic() + GIVE_UP_AFTER_S
    while time.monotonic() < deadline:
        if any(p.returncode is not None for p in running):
            raise RuntimeError(f"an ingest process exited; see {log}")
        try:
            seen = [await _received([client]) for client in clients]
        except httpx.HTTPError:
            seen = [0]
        if all(seen):
            return time.perf_counter(), sum(seen)
        await asyncio.sleep(SAMPLE_EVERY_S / 2)
    raise RuntimeError(f"ingest processes did not all start; see {log}")


async def _publish(publisher: BatchPublisher, records: Sequence[OutboundRecord]) -> None:
    for i in range(0, len(records), 2000):
        await publisher.publish(records[i : i + 2000])


async def http_ingest(
    base: KafkaSettings, count: int, *, log_dir: Path, publishers: bool = False
) -> dict[str, Any]:
    """``count`` valid events as ``POST /v1/events`` bodies of ``HTTP_BATCH`` from
    ``HTTP_CLIENTS`` clients at once, each waiting for its answer (202) before the next.

    ``publishers``: ingest reads a publishers file and every event goes through the token
    lookup and the scope check (one publisher allowed every type and source sent, no rate)."""
    name = "ingest-http-publishers" if publishers else "ingest-http"
    kafka = base.model_copy(update={"topic_prefix": f"bench.{name}."})
    await ensure_topics(kafka, TOPICS)
    bodies = _bodies(count)
    headers = {"content-type": "application/json"}
    settings: dict[str, str] = {}
    if publishers:
        token = new_token()
        settings["PUBLISHERS_FILE"] = str(_publishers_file(bodies, token, log_dir))
        headers["authorization"] = f"Bearer {token}"
    (process,), (client,) = await _ingests(kafka, 1, log_dir, name, settings=settings)
    with_file = " with a publishers file" if publishers else ""
    say(f"ingest over HTTP{with_file}: {count:,} events in bodies of {HTTP_BATCH:,}")
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def post() -> None:
        while not queue.empty():
            body = queue.get_nowait()
            answer = await client.post("/v1/events", content=body, headers=headers)
            if answer.status_code != 202:
                raise RuntimeError(
                    f"POST /v1/events answered {answer.status_code}: {answer.text[:300]}"
                )

    try:
        started = time.perf_counter()
        await asyncio.gather(*(post() for _ in range(HTTP_CLIENTS)))
        seconds = time.perf_counter() - started
    finally:
        await client.aclose()
        await stop(process)
    rate = count / seconds
    say(f"  {rate:,.0f} events/s")
    return {
        "events": count,
        "batch": HTTP_BATCH,
        "clients": HTTP_CLIENTS,
        "publishers_file": publishers,
        "events_per_s": round(rate),
        "seconds": round(seconds, 2),
    }


def _publishers_file(bodies: list[bytes], token: str, log_dir: Path) -> Path:
    """A publishers file with one publisher allowed every type and source in ``bodies``."""
    events = [event for body in bodies for event in json.loads(body)]
    types = sorted({event["type"] for event in events})
    sources = sorted({event["source"] for event in events})
    path = log_dir / "publishers.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "publishers": {
                    "bench": {
                        "token_sha256": token_sha256(token),
                        "types": types,
                        "sources": sources,
                    }
                }
            }
        ),
        encoding="utf-8",
    )
    return path


def _bodies(count: int) -> list[bytes]:
    values = [value for _, value in valid_events(count, seed=777)]
    return [
        b"[" + b",".join(values[i : i + HTTP_BATCH]) + b"]"
        for i in range(0, len(values), HTTP_BATCH)
    ]
