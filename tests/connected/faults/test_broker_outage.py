"""Fault 2: the broker unreachable at start-up, and for 20 s in the middle of a stream.

Every test runs its own embedded broker behind a ``TcpProxy`` (``tests.support.tcp_proxy``): the
broker advertises the proxy's port, so the services (real ``roadmap-monitor run`` processes) and
the test's own producers and consumers reach it only through the proxy. Cutting the proxy closes
every connection and refuses new ones, the way a broker host that went down looks to a client,
while the memory-only broker keeps its topics. The services must stay alive (``/healthz`` 200),
say they are not ready (``/readyz`` 503), recover on their own once the proxy listens again, and
lose nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TypeAlias

import httpx
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from contracts.codec import Accepted, RejectReason, decode_event
from contracts.events import EventType
from contracts.records import (
    DLQ_HEADER_REASON,
    DLQ_HEADER_SOURCE_OFFSET,
    DLQ_HEADER_SOURCE_PARTITION,
    DLQ_HEADER_SOURCE_TOPIC,
    DlqRecord,
)
from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.topics import ensure_topics
from tests.support.fault_report import FaultReport
from tests.support.kafka import read_until_quiet
from tests.support.processes import (
    SERVICES,
    ServiceProcess,
    metric_samples,
    metric_total,
    running_services,
    scrape,
)
from tests.support.roadmap_events import hiring, milestone, shipment
from tests.support.services import wait_ready
from tests.support.streams import Upstream
from tests.support.tcp_proxy import ProxiedBroker, proxied_broker

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"

ALL_TOPICS = [*UPSTREAM_TOPIC_BY_TYPE.values(), CANONICAL_EVENTS, DEAD_LETTERS]
OUTAGE_S = 20.0
RECOVERY_TIMEOUT_S = 180.0
"""How long a service may take to be ready again once the proxy listens (loaded machine)."""


# ---------------------------------------------------------------------------------------------
# Probing the three services (run as processes by tests.support.processes).


@dataclass
class Probe:
    alive: int | None
    ready: int | None
    detail: str
    at: float = field(default_factory=time.monotonic)


async def _probe(client: httpx.AsyncClient, service: ServiceProcess) -> Probe:
    """``/healthz`` and ``/readyz`` status codes (``None`` when no answer) and the readyz body."""
    try:
        alive: int | None = (await client.get(f"{service.base_url}/healthz")).status_code
    except httpx.HTTPError:
        alive = None
    try:
        response = await client.get(f"{service.base_url}/readyz")
    except httpx.HTTPError as exc:
        return Probe(alive, None, type(exc).__name__)
    failing = {
        name: check["detail"]
        for name, check in response.json().get("checks", {}).items()
        if not check["ok"]
    }
    return Probe(alive, response.status_code, json.dumps(failing))


async def _until_alive(client: httpx.AsyncClient, service: ServiceProcess, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert service.process.poll() is None, (
            f"{service.name} exited: {service.process.returncode}"
        )
        if (await _probe(client, service)).alive == 200:
            return time.monotonic() - started
        await asyncio.sleep(0.3)
    raise AssertionError(f"{service.name} /healthz did not answer within {timeout}s")


@dataclass
class OutageWatch:
    """What the services said while the proxy was cut."""

    probes: dict[str, list[Probe]] = field(default_factory=lambda: defaultdict(list))

    def summary(self, name: str) -> str:
        probes = self.probes[name]
        codes = Counter(f"{p.alive}/{p.ready}" for p in probes)
        first = next((p.detail for p in probes if p.ready == 503), "-")
        return (
            f"{name}: {len(probes)} probes healthz/readyz {dict(codes)}; not ready because {first}"
        )


async def _watch(
    services: dict[str, ServiceProcess],
    seconds: float,
    watch: OutageWatch,
    *,
    interval: float = 1.0,
) -> None:
    """Probe each service (all at once) every ``interval`` for ``seconds``; each must stay a
    live process throughout."""
    deadline = time.monotonic() + seconds

    async def one(client: httpx.AsyncClient, service: ServiceProcess) -> None:
        while time.monotonic() < deadline:
            assert service.process.poll() is None, (
                f"{service.name} exited during the outage with {service.process.returncode}"
            )
            watch.probes[service.name].append(await _probe(client, service))
            await asyncio.sleep(interval)

    async with httpx.AsyncClient(timeout=10) as client:
        await asyncio.gather(*(one(client, s) for s in services.values()))


async def _recovery_times(services: dict[str, ServiceProcess]) -> dict[str, float]:
    """Seconds until each service's ``/readyz`` is 200 again (all waited for together)."""
    started = time.monotonic()

    async def one(service: ServiceProcess) -> float:
        await wait_ready(service.base_url, timeout=RECOVERY_TIMEOUT_S)
        return time.monotonic() - started

    times = await asyncio.gather(*(one(s) for s in services.values()))
    return {name: round(t, 1) for name, t in zip(services, times, strict=True)}


def _kafka(broker: ProxiedBroker, run: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic_prefix=f"{run}.")


def _run_id(prefix: str) -> str:
    return f"{prefix}{random.randrange(16**8):08x}"


async def _stop_all(services: dict[str, ServiceProcess]) -> dict[str, int | None]:
    """SIGTERM every service; their exit codes (``None``: still running after 30 s)."""
    codes: dict[str, int | None] = {}
    for service in services.values():
        service.process.send_signal(signal.SIGTERM)
    for service in services.values():
        try:
            codes[service.name] = await asyncio.to_thread(service.process.wait, 30)
        except subprocess.TimeoutExpired:
            codes[service.name] = None
    return codes


# ---------------------------------------------------------------------------------------------
# A stream whose figures are easy to work out: one version per entity, a few exact re-sends,
# some poison.

COMMODITIES = ("wheat_flour", "wheat", "tractors", "dairy")
ROUTES = {"KZ_to_BY": ("KZ", "BY"), "BY_to_KZ": ("BY", "KZ")}
SECTORS = ("agricultural_machinery", "food_processing")
BASE = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Poison:
    topic_type: EventType
    value: bytes
    reason: RejectReason


@dataclass
class OutageStream:
    """Messages in publish order, and the figures metrics must show once all are folded."""

    messages: list[Upstream | Poison] = field(default_factory=list)
    tonnes: dict[tuple[str, str, str], Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )
    shipments: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    jobs: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    projects: int = 0
    resent: int = 0

    def valid_ids(self) -> set[str]:
        return {m.event_id for m in self.messages if isinstance(m, Upstream) and m.event_id}


def _outage_stream(run: str, *, shipments: int, projects: int, seed: int) -> OutageStream:
    """``shipments`` distinct shipments; ``projects`` projects, half with a milestone (a sector),
    each with a few monthly hiring reports; 3% of the valid events sent again byte for byte
    later on; 2% poison of three kinds. Tonnes have one decimal place, so sums are exact."""
    rng = random.Random(seed)
    stream = OutageStream()
    valid: list[Upstream] = []
    for n in range(shipments):
        direction = rng.choice(list(ROUTES))
        commodity = rng.choice(COMMODITIES)
        tonnes = Decimal(rng.randint(10, 4_000)) / 10
        day = BASE + timedelta(hours=n)
        valid.append(
            shipment(
                f"{run}-sh-{n}",
                f"{run}-SH-{n}",
                occurred=day,
                route=ROUTES[direction],
                mode="road",
                commodity=commodity,
                tonnes=str(tonnes),
                shipped_on=day.date(),
            )
        )
        stream.tonnes[(direction, "road", commodity)] += tonnes
        stream.shipments[(direction, "road", commodity)] += 1
    for p in range(projects):
        project = f"{run}-PRJ-{p}"
        sector = "unknown"
        if p % 2 == 0:
            sector = SECTORS[p % 4 // 2]
            day = BASE + timedelta(days=p)
            valid.append(
                milestone(
                    f"{run}-pm-{p}",
                    project,
                    occurred=day,
                    stage="agreed",
                    sector=sector,
                    joint_venture=False,
                    investment_usd=1_000_000 + p,
                    reached_on=day.date() - timedelta(days=1),
                )
            )
            stream.projects += 1
        for month in range(1, 6):
            jobs = rng.randint(-3, 25)
            valid.append(
                hiring(
                    f"{run}-hr-{p}-{month}",
                    project,
                    f"2025-{month:02d}",
                    jobs,
                    occurred=BASE + timedelta(days=31 * month, minutes=p),
                )
            )
            stream.jobs[sector] += jobs
    rng.shuffle(valid)
    messages: list[Upstream | Poison] = list(valid)
    for original in rng.sample(valid, len(valid) * 3 // 100):
        messages.insert(rng.randrange(messages.index(original) + 1, len(messages) + 1), original)
        stream.resent += 1
    kinds = list(EventType)
    for n in range(max(3, len(valid) // 50)):
        topic_type = kinds[n % 3]
        poison = [
            Poison(topic_type, b"\x00\x01garbage-" + rng.randbytes(12), RejectReason.NOT_UTF8),
            Poison(topic_type, b"not json at all %d" % n, RejectReason.NOT_JSON),
            Poison(
                topic_type,
                b'{"type": "%s", "event_id": 1}' % topic_type.value.encode(),
                RejectReason.SCHEMA,
            ),
        ][n % 3]
        messages.insert(rng.randrange(len(messages) + 1), poison)
    stream.messages = messages
    return stream


def _check_poison_reasons(stream: OutageStream) -> None:
    """The poison's expected reasons are what the contract's decoder says (test data check)."""
    for message in stream.messages:
        if isinstance(message, Poison):
            result = decode_event(message.value, expected_type=message.topic_type)
            assert not isinstance(result, Accepted)
            assert result.reason == message.reason, (message.value, result)


# ---------------------------------------------------------------------------------------------
# Publishing through the outage.


@dataclass
class PublishLog:
    """What the test's own producer went through."""

    sent: int = 0
    failed_attempts: int = 0
    first_failure_at: float | None = None
    finished_at: float | None = None
    errors: Counter[str] = field(default_factory=Counter)


async def _publish_through_outage(
    kafka: KafkaSettings,
    messages: Sequence[Upstream | Poison],
    log: PublishLog,
    *,
    per_second: float,
    chunk: int = 25,
) -> None:
    """Publish ``messages`` in order at about ``per_second``, chunk by chunk; a message whose
    send fails (the outage) is sent again after a pause until the broker acknowledges it. Such
    a retry may store the message twice upstream: ingest must treat the copy as any re-send."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers,
        acks="all",
        linger_ms=5,
        request_timeout_ms=10_000,
        retry_backoff_ms=500,
    )
    started = False
    while not started:
        try:
            await producer.start()
            started = True
        except Exception as exc:  # noqa: BLE001 - the broker may be unreachable: retry
            log.errors[type(exc).__name__] += 1
            await asyncio.sleep(1)
    try:
        pace = chunk / per_second
        for start in range(0, len(messages), chunk):
            tick = time.monotonic()
            pending = list(messages[start : start + chunk])
            while pending:
                futures = []
                for message in pending:
                    topic = kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[message.topic_type])
                    key = message.key if isinstance(message, Upstream) else None
                    try:
                        futures.append(await producer.send(topic, message.value, key=key))
                    except Exception as exc:  # noqa: BLE001 - counted and retried
                        futures.append(_failed(exc))
                results = await asyncio.gather(*futures, return_exceptions=True)
                failed = [
                    m for m, r in zip(pending, results, strict=True) if isinstance(r, BaseException)
                ]
                for result in results:
                    if isinstance(result, BaseException):
                        log.errors[type(result).__name__] += 1
                log.sent += len(pending) - len(failed)
                if failed:
                    log.failed_attempts += len(failed)
                    if log.first_failure_at is None:
                        log.first_failure_at = time.monotonic()
                    await asyncio.sleep(1)
                pending = failed
            await asyncio.sleep(max(0.0, pace - (time.monotonic() - tick)))
        log.finished_at = time.monotonic()
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()


def _failed(exc: BaseException) -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


# ---------------------------------------------------------------------------------------------
# Reading what came out.


def _event_id(record: Record) -> str:
    value: str = json.loads(record.value)["event_id"]
    return value


def _dlq_source(record: Record) -> tuple[str, int, int]:
    headers = {k: v.decode() for k, v in record.headers}
    return (
        headers[DLQ_HEADER_SOURCE_TOPIC],
        int(headers[DLQ_HEADER_SOURCE_PARTITION]),
        int(headers[DLQ_HEADER_SOURCE_OFFSET]),
    )


@dataclass
class Outcome:
    """Where every upstream message went, by source position, once ingest has settled."""

    upstream: list[Record]
    canonical: list[Record]
    dlq: list[Record]
    problems: list[str]
    waited_s: float

    @property
    def republished(self) -> int:
        return len(self.canonical) - len({_event_id(r) for r in self.canonical})

    @property
    def dlq_repeats(self) -> int:
        return len(self.dlq) - len({_dlq_source(r) for r in self.dlq})


def _position(record: Record) -> tuple[str, int, int]:
    return (record.topic, record.partition, record.offset)


def _account(
    kafka: KafkaSettings,
    stream: OutageStream,
    upstream: list[Record],
    canonical: list[Record],
    dlq: list[Record],
) -> list[str]:
    """Every upstream record accounted for, by its position: a valid event's id on the canonical
    topic, a poison message's position on the DLQ (with the reason the stream says and its
    bytes); nothing on either topic that did not come from upstream. What each upstream record
    is comes from the stream (matched by topic and bytes), not from the decoder."""
    type_by_topic = {kafka.topic_name(s): t for t, s in UPSTREAM_TOPIC_BY_TYPE.items()}
    event_ids = {
        (m.topic_type, m.value): m.event_id for m in stream.messages if isinstance(m, Upstream)
    }
    reasons = {(m.topic_type, m.value): m.reason for m in stream.messages if isinstance(m, Poison)}
    problems: list[str] = []
    sent = Counter(m.value for m in stream.messages)
    stored = Counter(r.value for r in upstream)
    lost_upstream = sent - stored
    if lost_upstream:
        problems.append(f"{sum(lost_upstream.values())} messages never stored upstream")
    canonical_ids = {_event_id(r) for r in canonical}
    dlq_by_source: dict[tuple[str, int, int], Record] = {}
    for record in dlq:
        dlq_by_source[_dlq_source(record)] = record
    poison_positions = set()
    valid_ids = set()
    for record in upstream:
        what = (type_by_topic[record.topic], record.value)
        event_id = event_ids.get(what)
        if event_id is not None:
            valid_ids.add(event_id)
            if event_id not in canonical_ids:
                problems.append(f"{event_id} at {_position(record)}: not canonical")
            continue
        reason = reasons.get(what)
        if reason is None:
            problems.append(f"{_position(record)}: not a message of the stream")
            continue
        poison_positions.add(_position(record))
        dead = dlq_by_source.get(_position(record))
        if dead is None:
            problems.append(f"poison at {_position(record)} ({reason}): not on the DLQ")
            continue
        body = DlqRecord.model_validate_json(dead.value)
        headers = {k: v.decode() for k, v in dead.headers}
        if (headers[DLQ_HEADER_REASON], body.reason) != (reason, reason):
            problems.append(f"DLQ {_position(record)}: reason {body.reason}, want {reason}")
        if base64.b64decode(body.original_base64) != record.value:
            problems.append(f"DLQ {_position(record)}: original bytes differ")
    if extra := canonical_ids - valid_ids:
        problems.append(f"{len(extra)} canonical ids never sent upstream")
    if extra_dlq := set(dlq_by_source) - poison_positions:
        problems.append(
            f"{len(extra_dlq)} DLQ records for no poison source: {sorted(extra_dlq)[:3]}"
        )
    if valid_ids != stream.valid_ids():
        problems.append("upstream valid ids differ from the stream's")
    return problems


async def _settle(kafka: KafkaSettings, stream: OutageStream, *, timeout: float) -> Outcome:
    """Read upstream, canonical and DLQ until every upstream record is accounted for (or
    ``timeout``), then once more after a quiet spell to catch late extra records."""
    started = time.monotonic()
    upstream_topics = [kafka.topic_name(s) for s in UPSTREAM_TOPIC_BY_TYPE.values()]
    upstream = await read_until_quiet(kafka, upstream_topics, timeout=600)
    while True:
        canonical = await read_until_quiet(kafka, [kafka.topic_name(CANONICAL_EVENTS)], timeout=600)
        dlq = await read_until_quiet(kafka, [kafka.topic_name(DEAD_LETTERS)], timeout=600)
        problems = _account(kafka, stream, upstream, canonical, dlq)
        if not problems or time.monotonic() - started > timeout:
            break
        await asyncio.sleep(3)
    waited = time.monotonic() - started
    return Outcome(upstream, canonical, dlq, problems, round(waited, 1))


def _expected_figures(stream: OutageStream) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """What metrics must show, worked out from the stream alone."""

    def labels(key: tuple[str, str, str]) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(zip(("direction", "mode", "commodity"), key, strict=True)))

    projects = stream.projects
    shipments = sum(stream.shipments.values())
    hiring_reports = len(
        {
            m.event_id
            for m in stream.messages
            if isinstance(m, Upstream) and "-hr-" in (m.event_id or "")
        }
    )
    return {
        "roadmap_freight_tonnes": {labels(k): float(v) for k, v in stream.tonnes.items()},
        "roadmap_freight_shipments": {labels(k): float(v) for k, v in stream.shipments.items()},
        "roadmap_jobs": {(("sector", s),): float(v) for s, v in stream.jobs.items()},
        "roadmap_projects": {(("stage", "agreed"),): float(projects)},
        "roadmap_metrics_entities": {
            (("type", "trade.shipment"),): float(shipments),
            (("type", "project.milestone"),): float(projects),
            (("type", "hiring.report"),): float(hiring_reports),
        },
    }


async def _metrics_figures(
    base_url: str, want: dict[str, dict[tuple[tuple[str, str], ...], float]], timeout: float
) -> tuple[dict[str, dict[tuple[tuple[str, str], ...], float]], float]:
    """Scrape until the figures equal ``want`` (or ``timeout``); the last figures and the wait."""
    started = time.monotonic()
    while True:
        text = await scrape(base_url)
        seen = {
            name: {k: v for k, v in metric_samples(text, name).items() if v != 0 or k in expected}
            for name, expected in want.items()
        }
        if seen == want or time.monotonic() - started > timeout:
            return seen, round(time.monotonic() - started, 1)
        await asyncio.sleep(2)


def _ingest_counts(text: str) -> dict[str, float]:
    return {
        kind: metric_total(text, f"roadmap_ingest_events_{kind}_total", source="kafka")
        for kind in ("received", "accepted", "rejected", "duplicate")
    } | {
        "publish_failures": metric_total(text, "roadmap_ingest_publish_failures_total"),
        "commit_failures": metric_total(text, "roadmap_ingest_commit_failures_total"),
    }


def _check_ingest_counts(counts: dict[str, float], outcome: Outcome, stream: OutageStream) -> None:
    """received = accepted + rejected + duplicate, and every upstream record was received; when
    no record was processed twice, each count is exactly what the upstream topics hold."""
    assert counts["received"] == counts["accepted"] + counts["rejected"] + counts["duplicate"]
    assert counts["received"] >= len(outcome.upstream)
    poison = sum(1 for m in stream.messages if isinstance(m, Poison))
    valid_records = len(outcome.upstream) - poison
    if counts["received"] == len(outcome.upstream):
        assert counts["accepted"] == len(stream.valid_ids())
        assert counts["rejected"] == poison
        assert counts["duplicate"] == valid_records - len(stream.valid_ids())


# ---------------------------------------------------------------------------------------------
# (a) Unreachable at start-up.


@pytest.mark.timeout(600)
async def test_services_started_without_broker_stay_alive_not_ready_then_recover(
    tmp_path: Path, fault_report: FaultReport
) -> None:
    """Ingest, metrics and alerts started while every connection to the broker is refused:
    for 20 s each process stays alive, /healthz answers 200 and /readyz 503 on every probe.
    Once the proxy listens again, each becomes ready on its own (no restart), and then a small
    stream (valid events, exact re-sends, poison) goes through: every event canonical, every
    poison message on the DLQ, metrics' figures equal to the ones worked out from the stream.
    A SIGTERM then stops each cleanly (exit 0)."""
    run = _run_id("outage-a-")
    with proxied_broker(tmp_path / "kafka.log", listening=False) as broker:
        kafka = _kafka(broker, run)
        with running_services(kafka, tmp_path, run) as services:
            async with httpx.AsyncClient(timeout=10) as client:
                boot = {
                    n: round(await _until_alive(client, s, 120), 1) for n, s in services.items()
                }
            fault_report.injected(
                f"broker unreachable from start-up: proxy {broker.proxy.address} refusing every "
                f"connection; {', '.join(SERVICES)} spawned (/healthz answered after {boot} s)"
            )
            watch = OutageWatch()
            await _watch(services, OUTAGE_S, watch)
            for name in SERVICES:
                fault_report.saw(watch.summary(name))
            for name, probes in watch.probes.items():
                assert probes, name
                assert all(p.alive == 200 for p in probes), watch.summary(name)
                assert all(p.ready == 503 for p in probes), watch.summary(name)
            fault_report.checked(
                f"for {OUTAGE_S:.0f} s every process alive, every /healthz 200, every /readyz 503"
            )

            broker.proxy.restore()
            fault_report.injected("proxy restored (listening again on the same port)")
            recovered = await _recovery_times(services)
            fault_report.saw(f"/readyz 200 again after {recovered} s, no process restarted")
            assert all(s.process.poll() is None for s in services.values())

            stream = _outage_stream(run, shipments=90, projects=6, seed=11)
            _check_poison_reasons(stream)
            log = PublishLog()
            await _publish_through_outage(kafka, stream.messages, log, per_second=500)
            outcome = await _settle(kafka, stream, timeout=120)
            assert outcome.problems == [], outcome.problems[:10]
            want = _expected_figures(stream)
            seen, waited = await _metrics_figures(services["metrics"].base_url, want, timeout=90)
            assert seen == want
            counts = _ingest_counts(await scrape(services["ingest"].base_url))
            _check_ingest_counts(counts, outcome, stream)
            fault_report.checked(
                f"after recovery {len(outcome.upstream)} upstream records: "
                f"{len({_event_id(r) for r in outcome.canonical})} event ids canonical, "
                f"{len(outcome.dlq)} DLQ records, {counts['duplicate']:.0f} duplicates counted; "
                f"metrics equal the stream's figures (after {waited} s): "
                f"{sum(stream.shipments.values())} shipments, "
                f"{sum(stream.tonnes.values())} t, {sum(stream.jobs.values())} net jobs"
            )
            codes = await _stop_all(services)
            fault_report.saw(f"exit codes after SIGTERM: {codes}")
            assert codes == dict.fromkeys(SERVICES, 0)


# ---------------------------------------------------------------------------------------------
# (b) 20 s outage mid-stream.

STREAM_RATE = 60.0
"""Upstream messages a second the test publishes (about 50 s of stream, plus the outage)."""
CUT_AFTER_S = 15.0


@pytest.mark.timeout(900)
async def test_twenty_second_outage_mid_stream_loses_nothing(
    tmp_path: Path, fault_report: FaultReport
) -> None:
    """About 3,000 upstream messages (2,400 distinct shipments, 40 milestones, 400 hiring
    reports, 3% exact re-sends, 2% poison) published at 60 a second; after 15 s every connection
    to the broker is cut for 20 s (the test's producer keeps re-sending what fails). During the
    outage every service process stays alive with /healthz 200 and /readyz 503 (after a 5 s
    grace for the first failed check); afterwards each is ready again on its own, and nothing is
    lost: every upstream record, by its source position, is canonical (its event id) or on the
    DLQ (its position, reason and bytes), ingest's counts add up, and metrics' /metrics shows
    exactly the tonnes and shipments by corridor and commodity, net jobs by sector, projects and
    entities worked out from the stream."""
    run = _run_id("outage-b-")
    stream = _outage_stream(run, shipments=2400, projects=80, seed=5)
    _check_poison_reasons(stream)
    with proxied_broker(tmp_path / "kafka.log") as broker:
        kafka = _kafka(broker, run)
        await ensure_topics(kafka, ALL_TOPICS)
        with running_services(kafka, tmp_path, run) as services:
            ready = await _recovery_times(services)
            fault_report.saw(f"all ready through the proxy after {ready} s")
            log = PublishLog()
            publisher = asyncio.create_task(
                _publish_through_outage(kafka, stream.messages, log, per_second=STREAM_RATE)
            )
            await asyncio.sleep(CUT_AFTER_S)
            assert not publisher.done(), "the stream ended before the outage"
            before = _ingest_counts(await scrape(services["ingest"].base_url))
            cut_at = time.monotonic()
            closed = broker.proxy.cut()
            fault_report.injected(
                f"{len(stream.messages)} upstream messages at {STREAM_RATE:.0f}/s "
                f"({sum(stream.shipments.values())} shipments, {stream.projects} milestones, "
                f"{len(stream.valid_ids()) - sum(stream.shipments.values()) - stream.projects} "
                f"hiring reports, {stream.resent} exact re-sends, "
                f"{sum(1 for m in stream.messages if isinstance(m, Poison))} poison); "
                f"after {CUT_AFTER_S:.0f} s ({log.sent} sent, {before['received']:.0f} received by "
                f"ingest) proxy cut for {OUTAGE_S:.0f} s: {closed} open connections reset, new "
                "ones refused"
            )
            watch = OutageWatch()
            await _watch(services, OUTAGE_S, watch)
            broker.proxy.restore()
            restored_at = time.monotonic()
            for name in SERVICES:
                fault_report.saw(watch.summary(name))
            grace = 5.0
            for name, probes in watch.probes.items():
                assert all(p.alive == 200 for p in probes), watch.summary(name)
                late = [p for p in probes if p.at - cut_at >= grace]
                assert late, watch.summary(name)
                assert all(p.ready == 503 for p in late), watch.summary(name)
            fault_report.checked(
                f"during the {OUTAGE_S:.0f} s outage every process alive, /healthz 200 on every "
                f"probe, /readyz 503 on every probe after {grace:.0f} s"
            )

            recovered = await _recovery_times(services)
            fault_report.saw(f"/readyz 200 again {recovered} s after the proxy was restored")
            await asyncio.wait_for(publisher, timeout=300)
            assert log.finished_at is not None
            fault_report.saw(
                f"test producer: {log.sent} acknowledged, {log.failed_attempts} failed sends "
                f"re-sent ({dict(log.errors)}); stream done "
                f"{log.finished_at - restored_at:.0f} s after the restore"
            )
            outcome = await _settle(kafka, stream, timeout=240)
            counts = _ingest_counts(await scrape(services["ingest"].base_url))
            fault_report.saw(
                f"upstream holds {len(outcome.upstream)} records; canonical "
                f"{len(outcome.canonical)} ({outcome.republished} re-published), DLQ "
                f"{len(outcome.dlq)} ({outcome.dlq_repeats} repeats); ingest counts {counts}; "
                f"settled {outcome.waited_s} s after the stream ended"
            )
            assert outcome.problems == [], outcome.problems[:10]
            _check_ingest_counts(counts, outcome, stream)
            fault_report.checked(
                "conservation by source position: every upstream record's event id canonical or "
                "its position on the DLQ with the decoder's reason and its bytes; nothing extra; "
                "received = accepted + rejected + duplicate"
            )
            want = _expected_figures(stream)
            seen, waited = await _metrics_figures(services["metrics"].base_url, want, timeout=120)
            assert seen == want
            fault_report.checked(
                f"metrics /metrics equals the stream's figures (after {waited} s): "
                f"{sum(stream.tonnes.values())} t in {sum(stream.shipments.values())} shipments "
                f"over {len(stream.tonnes)} corridor/commodity series, net jobs by sector "
                f"{dict(stream.jobs)}, {stream.projects} projects agreed"
            )
            assert all(s.process.poll() is None for s in services.values())
            fault_report.checked(
                f"no process restarted (outage + recovery took "
                f"{time.monotonic() - cut_at:.0f} s end to end)"
            )
