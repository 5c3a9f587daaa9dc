"""Fault 4: a receiver that is down, slow (10 s), or answers 500/429 for a while.

``roadmap-monitor run alerts`` runs as a real process with one signed webhook receiver, on its
own topic prefix and delivery group. The notifications are alert records put straight on the
alerts topic (``roadmap.alerts.v1``), which is what the delivery consumer reads: 500 alerts, each
firing, repeated once and resolved (1,500 notifications, in topic order per alert because an
alert's records share its key and so its partition). Every record carries a 32 KiB runbook text
annotation, so the backlog is ~49 MB: far more than a consumer that buffers a bounded amount
(aiokafka fetches at most 1 MiB per partition, three partitions) can hold, so keeping the backlog
in memory would show in the process's resident memory.

The webhook is ``FlakyWebhook``, a real loopback HTTP server (uvicorn) answering what the test
scripts per phase; unlike ``RecordingReceiver`` it can sleep before answering and notes whether
the client was still there to get the answer, and it can be "down" (nothing listening on its
port: connection refused). The retry policy is deploy/alerts.yaml's with shorter waits: back off
from 1 s up to 2 s (5 s where ``Retry-After`` must be honoured), give up only after 10 minutes,
5 s per request.

Each test: the backlog is published while the receiver fails; the failure lasts at least 20 s
and a number of refused attempts; the receiver recovers and nothing else is done. Checked: every
notification (dedup key, state, repeat) is accepted at least once (duplicates counted), in topic
order per alert; delivery resumed on its own within a few backoffs of the recovery; nothing was
given up or rejected; the service's sent/retried counters equal what the receiver saw; and the
process's VmRSS stayed within a bound (``RSS_GROWTH_BOUND_MIB``) while the backlog waited.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from aiokafka import AIOKafkaProducer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts.keys import alert_key
from contracts.records import AlertName, AlertState, AlertTransition
from contracts.topics import ALERT_TRANSITIONS
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from tests.support.alerts_stack import ROADMAP_ID, Samples, scrape, series
from tests.support.fault_report import FaultReport
from tests.support.kafka import RealBroker, unique_name
from tests.support.services import spawn_service, wait_ready
from tests.support.waiting import until

ALERTS = 500
NOTIFICATIONS = ALERTS * 3
PADDING = 32 * 1024
BACKLOG_MIB = NOTIFICATIONS * PADDING / 2**20
RSS_GROWTH_BOUND_MIB = 20.0
"""Under half of the ~46.9 MiB of runbook text alone in the backlog (the records are more as
JSON, more again as Python objects). A consumer that fetched the backlog into memory while the
first record was being retried would grow by at least the backlog; one that buffers at most
1 MiB per partition grew by 4-8 MiB in the runs that set this bound (see the report lines)."""
TIMEOUT = 180.0
FAILING_AT_LEAST_S = 20.0
SECRET = b"fault-suite-key"
SENT = "roadmap_alerts_notifications_sent_total"
FAILED = "roadmap_alerts_notifications_failed_total"
RETRIED = "roadmap_alerts_notifications_retried_total"

Notification = tuple[str, str, int]
"""(dedup key, state, repeat): one notification."""


# ---------------------------------------------------------------------------------------------
# The receiver.


@dataclass(frozen=True)
class Answer:
    status: int
    delay_s: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    """One request the webhook received."""

    notification: Notification
    indicator: str
    status: int
    headers: Mapping[str, str]
    """What was answered."""
    signed: bool
    arrived: float
    answered: float
    client_gone: bool
    """True when the client had hung up before the answer (a timed-out request)."""

    @property
    def delivered(self) -> bool:
        """The service got a 2xx: the notification counts as accepted."""
        return 200 <= self.status < 300 and not self.client_gone


@dataclass
class FlakyWebhook:
    """A loopback webhook answering ``script()``; ``up()`` starts listening, ``down()`` stops."""

    script: Callable[[], Answer] = lambda: Answer(200)
    port: int = field(default_factory=free_port)
    hits: list[Hit] = field(default_factory=list)
    in_flight: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: Request) -> Response:
        arrived = time.monotonic()
        body = await request.body()
        answer = self.script()
        self.in_flight += 1
        try:
            if answer.delay_s:
                await asyncio.sleep(answer.delay_s)
        finally:
            self.in_flight -= 1
        record = AlertTransition.model_validate_json(body)
        expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        self.hits.append(
            Hit(
                (record.dedup_key, record.state.value, record.repeat),
                record.labels["indicator"],
                answer.status,
                answer.headers,
                hmac.compare_digest(expected, request.headers.get("x-roadmap-signature", ""))
                and request.headers.get("x-roadmap-dedup-key") == record.dedup_key,
                arrived,
                time.monotonic(),
                await request.is_disconnected(),
            )
        )
        return Response(status_code=answer.status, headers=dict(answer.headers))

    async def up(self) -> None:
        app = Starlette(routes=[Route("/hook", self._handle, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)

    async def down(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None

    def delivered(self) -> list[Hit]:
        return [h for h in self.hits if h.delivered]


@contextlib.asynccontextmanager
async def _webhook(webhook: FlakyWebhook, *, listening: bool) -> AsyncIterator[FlakyWebhook]:
    if listening:
        await webhook.up()
    try:
        yield webhook
    finally:
        await webhook.down()


# ---------------------------------------------------------------------------------------------
# The service and its backlog.


def _alerts_file(path: Path, url: str, secret_var: str, max_backoff: str) -> Path:
    document: dict[str, Any] = {
        "version": 1,
        "lifecycle": {
            "defaults": {"for": "1d", "keep_firing_for": "0s"},
            "repeat_interval": "1h",
            "evaluation_interval": "1s",
        },
        "retry": {
            "initial_backoff": "1s",
            "max_backoff": max_backoff,
            "give_up_after": "10m",
            "timeout": "5s",
        },
        "receivers": [{"name": "hook", "kind": "webhook", "url": url, "secret_env": secret_var}],
        "routes": [{"receivers": ["hook"]}],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@dataclass(frozen=True)
class AlertsProcess:
    base_url: str
    pid: int

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


@contextlib.contextmanager
def _alerts(
    kafka: KafkaSettings, tmp_path: Path, webhook: FlakyWebhook, max_backoff: str
) -> Iterator[AlertsProcess]:
    """``roadmap-monitor run alerts`` on event time with the webhook; SIGTERM at the end."""
    secret_var = f"ALERTS_FAULT_SECRET_{uuid.uuid4().hex[:8].upper()}"
    port = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "ALERTS_HTTP_PORT": str(port),
        "ALERTS_FILE": str(
            _alerts_file(tmp_path / "alerts.yaml", webhook.url, secret_var, max_backoff)
        ),
        "ALERTS_DELIVERY_GROUP_ID": unique_name("faults-delivery"),
        "ALERTS_LOG_FORMAT": "text",
        "ROADMAP_CLOCK": "event",
        secret_var: SECRET.decode(),
    }
    log = tmp_path / "alerts.log"
    with spawn_service("alerts", env, log_path=log) as process:
        try:
            yield AlertsProcess(f"http://127.0.0.1:{port}", process.pid)
        except BaseException:
            print(f"--- {log.name} (last lines) ---")
            print("\n".join(log.read_text(errors="replace").splitlines()[-30:]))
            raise
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, "alerts did not stop cleanly"


def _backlog(run: str) -> list[AlertTransition]:
    """Per alert: firing, one repeat, resolved; alerts interleaved, as an evaluator writes."""
    start = datetime.now(UTC)
    since = datetime(2027, 7, 1, tzinfo=UTC)
    runbook = ("Call the project office, then check the feed. " * (PADDING // 40))[:PADDING]
    records = []
    for step, (state, repeat) in enumerate(
        ((AlertState.FIRING, 0), (AlertState.FIRING, 1), (AlertState.RESOLVED, 0))
    ):
        for n in range(ALERTS):
            labels = {
                "alertname": AlertName.TARGET_BEHIND.value,
                "indicator": f"fault_{run}_{n:04d}",
                "severity": "warning",
                "owner": "industry-office",
                "roadmap": ROADMAP_ID,
            }
            at = start + timedelta(seconds=step)
            records.append(
                AlertTransition(
                    alertname=AlertName.TARGET_BEHIND,
                    state=state,
                    labels=labels,
                    annotations={"summary": f"alert {n} behind", "runbook_text": runbook},
                    since=since,
                    started_at=start,
                    at=at,
                    repeat=repeat,
                    previous_at=start + timedelta(seconds=step - 1) if repeat else None,
                    dedup_key=hashlib.sha256(f"{run}/{n}".encode()).hexdigest()[:32],
                )
            )
    return records


async def _publish(kafka: KafkaSettings, records: list[AlertTransition]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, acks="all", max_request_size=4 * 2**20
    )
    await producer.start()
    try:
        topic = kafka.topic_name(ALERT_TRANSITIONS)
        futures = [
            await producer.send(topic, r.model_dump_json().encode(), key=alert_key(r.labels))
            for r in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _notification(record: AlertTransition) -> Notification:
    return (record.dedup_key, record.state.value, record.repeat)


# ---------------------------------------------------------------------------------------------
# One run: fail, publish, wait, recover, drain, check.


@dataclass
class Outcome:
    records: list[AlertTransition]
    webhook: FlakyWebhook
    rss_kib: dict[str, int]
    """baseline (ready, nothing published), failing_max, failing_last, drained."""
    failing_s: float
    recovered_at: float
    metrics: Samples
    failing_metrics: Samples


async def _run(
    broker: RealBroker,
    tmp_path: Path,
    *,
    failing: Callable[[], Answer] | None,
    min_refused: int,
    max_backoff: str = "2s",
    phases: list[tuple[Callable[[], Answer], int]] | None = None,
) -> Outcome:
    """``failing`` answers (None: nothing listens) until FAILING_AT_LEAST_S passed and the
    service counted ``min_refused`` retries; then each of ``phases`` (answer, retries more);
    then 200s. Returns what was seen once every notification was accepted."""
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_prefix=unique_name("faults-hook") + "."
    )
    records = _backlog(uuid.uuid4().hex[:8])
    webhook = FlakyWebhook(script=failing or (lambda: Answer(200)))
    rss: dict[str, int] = {}
    async with _webhook(webhook, listening=failing is not None):
        with _alerts(kafka, tmp_path, webhook, max_backoff) as alerts:
            await wait_ready(alerts.base_url, timeout=TIMEOUT)
            rss["baseline"] = alerts.rss_kib()
            await _publish(kafka, records)
            started = time.monotonic()
            samples = [alerts.rss_kib()]

            async def retried_at_least(count: float) -> Samples:
                async def probe() -> Samples:
                    samples.append(alerts.rss_kib())
                    return await scrape(alerts.base_url)

                return await until(
                    f"{count:.0f} retries",
                    probe,
                    lambda s: series(s, RETRIED, receiver="hook") >= count,
                    timeout=TIMEOUT,
                    interval=0.5,
                )

            failing_metrics = await retried_at_least(min_refused)
            while time.monotonic() - started < FAILING_AT_LEAST_S:
                samples.append(alerts.rss_kib())
                await asyncio.sleep(0.5)
            for answer, more in phases or []:
                webhook.script = answer
                now = series(await scrape(alerts.base_url), RETRIED, receiver="hook")
                failing_metrics = await retried_at_least(now + more)
            failing_s = time.monotonic() - started
            rss["failing_max"], rss["failing_last"] = max(samples), samples[-1]

            webhook.script = lambda: Answer(200)
            recovered_at = time.monotonic()
            if failing is None:
                await webhook.up()
            wanted = {_notification(r) for r in records}

            def all_delivered(s: Samples) -> bool:
                got = {h.notification for h in webhook.delivered()}
                return wanted <= got and series(s, SENT, receiver="hook") >= len(
                    webhook.delivered()
                )

            final = await until(
                "every notification accepted and counted",
                lambda: scrape(alerts.base_url),
                all_delivered,
                timeout=TIMEOUT,
                interval=0.5,
            )
            # A slow attempt still sleeping in the webhook is recorded once it answers.
            while webhook.in_flight:
                await asyncio.sleep(0.2)
            final = await scrape(alerts.base_url)
            rss["drained"] = alerts.rss_kib()
    return Outcome(records, webhook, rss, failing_s, recovered_at, final, failing_metrics)


def _check(outcome: Outcome, report: FaultReport, *, failed_attempts_seen: int | None) -> None:
    """What every fault must leave: all delivered in order, resumed, counted, memory bounded.

    ``failed_attempts_seen``: refused attempts the webhook saw (None when it was down and saw
    none); the service's retried counter must equal it.
    """
    webhook, records, metrics = outcome.webhook, outcome.records, outcome.metrics
    delivered = webhook.delivered()
    wanted = [_notification(r) for r in records]
    counts = Counter(h.notification for h in delivered)
    duplicates = sum(n - 1 for n in counts.values())
    missing = set(wanted) - set(counts)
    resumed = min(h.answered for h in delivered) - outcome.recovered_at
    drained = max(h.answered for h in delivered) - outcome.recovered_at
    rss = {k: v / 1024 for k, v in outcome.rss_kib.items()}
    growth = rss["failing_max"] - rss["baseline"]
    report.saw(
        f"failing for {outcome.failing_s:.1f}s: {len(webhook.hits)} requests reached the "
        f"webhook in all, the failure phase ended once "
        f"{series(outcome.failing_metrics, RETRIED, receiver='hook'):.0f} retries were counted; "
        f"after recovery the first acceptance came in {resumed:.1f}s "
        f"and all {len(wanted)} in {drained:.1f}s; {duplicates} duplicate deliveries"
    )
    report.saw(
        "alerts VmRSS MiB: "
        + ", ".join(f"{k} {v:.1f}" for k, v in rss.items())
        + f" (backlog {BACKLOG_MIB:.1f} MiB of padding alone)"
    )
    assert not missing, f"{len(missing)} notifications never accepted"
    assert all(h.signed for h in webhook.hits), "a request without a valid signature or key"
    # In topic order per alert: firing, its repeat, resolved, each first accepted in turn.
    per_alert: dict[str, list[Notification]] = {}
    for hit in delivered:
        got = per_alert.setdefault(hit.indicator, [])
        if hit.notification not in got:
            got.append(hit.notification)
    for record in records:
        assert _notification(record) in per_alert[record.labels["indicator"]]
    expected_order = {
        indicator: [_notification(r) for r in records if r.labels["indicator"] == indicator]
        for indicator in per_alert
    }
    disordered = [i for i, got in per_alert.items() if got != expected_order[i]]
    assert not disordered, f"{len(disordered)} alerts out of order, e.g. {disordered[:2]}"
    report.checked(
        f"all {len(wanted)} notifications of {ALERTS} alerts accepted, signed, in order per "
        f"alert (firing, repeat, resolved); {duplicates} duplicates"
    )
    # Resumed by itself within a few backoffs; nothing lost to the retry budget.
    assert resumed < 30.0, f"delivery resumed {resumed:.1f}s after the receiver recovered"
    assert series(metrics, FAILED, receiver="hook", reason="gave_up") == 0
    assert series(metrics, FAILED, receiver="hook", reason="rejected") == 0
    sent = series(metrics, SENT, receiver="hook")
    retried = series(metrics, RETRIED, receiver="hook")
    refused = [h for h in webhook.hits if not h.delivered]
    assert sent == len(delivered), (sent, len(delivered))
    if failed_attempts_seen is not None:
        assert retried == len(refused) == failed_attempts_seen, (retried, len(refused))
    else:
        assert retried >= 3
        assert not refused
    report.checked(
        f"counters: sent {sent:.0f} = {len(delivered)} accepted by the webhook, retried "
        f"{retried:.0f} = {len(refused)} refused attempts the webhook saw"
        + (" (+ refused connections)" if failed_attempts_seen is None else "")
        + ", failed 0"
    )
    assert growth < RSS_GROWTH_BOUND_MIB, f"RSS grew {growth:.1f} MiB while the backlog waited"
    report.checked(
        f"RSS growth while failing {growth:.1f} MiB < {RSS_GROWTH_BOUND_MIB} MiB "
        f"(backlog {BACKLOG_MIB:.1f} MiB)"
    )


def _injected(report: FaultReport, what: str) -> None:
    report.injected(
        f"{what}; meanwhile {NOTIFICATIONS} notifications ({ALERTS} alerts x firing, repeat, "
        f"resolved; {PADDING // 1024} KiB each) put on the alerts topic"
    )


# ---------------------------------------------------------------------------------------------


@pytest.mark.timeout(600)
async def test_receiver_down_then_up_gets_every_notification_in_order(
    broker: RealBroker, tmp_path: Path, fault_report: FaultReport
) -> None:
    """Nothing listens on the webhook's port (connection refused) for at least 20 s and 5
    retries; then it listens and answers 200. Every notification is accepted, in order per
    alert, delivery resumes within 30 s (backoff at most 2 s), retried counts the refused
    connections (the webhook saw none), sent equals what it accepted, memory bounded."""
    _injected(fault_report, "webhook down (connection refused) >= 20 s, then up")
    outcome = await _run(broker, tmp_path, failing=None, min_refused=5)
    _check(outcome, fault_report, failed_attempts_seen=None)


@pytest.mark.timeout(600)
async def test_slow_receiver_answering_after_10s_times_out_and_loses_nothing(
    broker: RealBroker, tmp_path: Path, fault_report: FaultReport
) -> None:
    """The webhook answers 200 only after 10 s, past the service's 5 s request timeout, for at
    least 20 s and 3 attempts: each attempt times out (the webhook notes the client hung up
    before its answer) and is retried; then it answers at once. Every notification is accepted
    in order; the timed-out attempts count as retries, not as sent; memory bounded."""
    _injected(fault_report, "webhook answering after 10 s (request timeout 5 s) >= 20 s")
    slow = lambda: Answer(200, delay_s=10.0)  # noqa: E731
    outcome = await _run(broker, tmp_path, failing=slow, min_refused=3)
    gone = [h for h in outcome.webhook.hits if h.client_gone]
    fault_report.saw(f"{len(gone)} attempts abandoned by the service after its 5 s timeout")
    assert gone
    assert all(h.answered - h.arrived >= 9.9 for h in gone)
    # The timed-out attempts, and only they, count as retries.
    _check(outcome, fault_report, failed_attempts_seen=len(gone))


@pytest.mark.timeout(600)
async def test_receiver_answering_500_then_200_gets_every_notification(
    broker: RealBroker, tmp_path: Path, fault_report: FaultReport
) -> None:
    """The webhook answers 500 for at least 20 s and 10 attempts, then 200: every notification
    is accepted in order per alert, each refused attempt is one retry on /metrics, none is
    given up, memory bounded."""
    _injected(fault_report, "webhook answering 500 >= 20 s")
    outcome = await _run(broker, tmp_path, failing=lambda: Answer(500), min_refused=10)
    refused = [h for h in outcome.webhook.hits if h.status == 500]
    assert len({h.notification for h in refused}) == 1, "one notification at a time is retried"
    _check(outcome, fault_report, failed_attempts_seen=len(refused))


@pytest.mark.timeout(600)
async def test_receiver_answering_429_with_and_without_retry_after_is_waited_for(
    broker: RealBroker, tmp_path: Path, fault_report: FaultReport
) -> None:
    """The webhook answers 429 with ``Retry-After: 3`` for at least 20 s and 4 attempts, then
    429 without the header for 4 more attempts, then 200. After each 429 with Retry-After: 3
    the next attempt came at least 3 s later (max backoff 5 s here, so it is honoured); without
    it, the exponential backoff (0.5-5 s). Every notification is accepted in order, counters
    agree with the webhook, memory bounded."""
    _injected(fault_report, "webhook answering 429 Retry-After: 3 >= 20 s, then 429 without it x4")
    outcome = await _run(
        broker,
        tmp_path,
        failing=lambda: Answer(429, headers={"Retry-After": "3"}),
        min_refused=4,
        max_backoff="5s",
        phases=[(lambda: Answer(429), 4)],
    )
    hits = outcome.webhook.hits
    refused = [h for h in hits if h.status == 429]
    gaps = [
        (a.headers.get("Retry-After"), b.arrived - a.answered)
        for a, b in itertools.pairwise(hits)
        if a.status == 429
    ]
    with_header = [g for h, g in gaps if h == "3"]
    without = [g for h, g in gaps if h is None]
    fault_report.saw(
        f"waits after 429 with Retry-After: 3: min {min(with_header):.2f}s over "
        f"{len(with_header)}; without: {min(without):.2f}-{max(without):.2f}s over {len(without)}"
    )
    assert len(with_header) >= 4
    assert len(without) >= 4
    assert min(with_header) >= 2.95, with_header
    assert all(0.45 <= g <= 5.5 for g in without), without
    _check(outcome, fault_report, failed_attempts_seen=len(refused))
