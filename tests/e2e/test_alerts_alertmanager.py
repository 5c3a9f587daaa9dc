"""The alerts service against a real Alertmanager: fire, route to a webhook, resolve.

Everything is real and on loopback: a Kafka-protocol broker, the alerts service in-process
(``create_app`` + ``running_app``), Debian's Alertmanager 0.25 started by the test, and a
``RecordingReceiver`` as Alertmanager's webhook. The service runs on the event clock
(``ROADMAP_CLOCK=event``), so the roadmap time is the ``evaluated_at`` of the KPI snapshots the
test publishes, and with ``for: 0s`` / ``keep_firing_for: 0s`` an alert fires and resolves on
the first evaluation that sees its condition start or stop.

The numbers are worked out by hand. ``jobs_created`` runs linearly from 0 at 2025-01-01T00:00Z to
1,800 at 2030-01-01T00:00Z (1,826 days). At 2027-07-01T12:00Z, 911.5 days in, 1,800 * 911.5 /
1,826 = 898.52 jobs are expected; with a 10% tolerance the alert holds below 808.67.
- 120 jobs (50 + 40 + 30 over partitions 0, 1, 2): behind by 778.52 (87% of expected), 7% of
  the target: ``RoadmapTargetBehind`` fires.
- an hour later, 1,000 jobs (400 + 350 + 250): on trajectory, the alert resolves.
Other indicators get no snapshot, so they go stale (``RoadmapIndicatorStale``); assertions
pick the ``jobs_created`` alerts by their labels.

The second test checks that an Alertmanager receiver with its own, longer ``repeat_interval``
keeps a firing alert active there: its ``endsAt`` lies beyond the next re-send it will get.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from contracts.records import KpiSnapshot
from contracts.topics import KPI_SNAPSHOTS
from services.alerts.app import create_app
from services.alerts.settings import AlertsSettings
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from tests.e2e.conftest import WEBHOOK_PATH
from tests.support.alertmanager import RunningAlertmanager
from tests.support.kafka import unique_name
from tests.support.receiver import Received, RecordingReceiver
from tests.support.services import REPO, running_app

ROADMAP_FILE = REPO / "deploy" / "roadmap.yaml"
ROADMAP = "kz-by-2025-2029"
INDICATOR = "jobs_created"
BEHIND_AT = datetime(2027, 7, 1, 12, 0, tzinfo=UTC)
RECOVERED_AT = BEHIND_AT + timedelta(hours=1)
EXPECTED_AT_BEHIND = Decimal("898.52")
"""1,800 * 911.5 / 1,826, rounded (the snapshot's ``expected``; the service computes its own)."""

IDENTITY = {
    "alertname": "RoadmapTargetBehind",
    "indicator": INDICATOR,
    "severity": "warning",
    "owner": "industry-office",
    "roadmap": ROADMAP,
}
TITLE = "Jobs created by joint industrial projects"
SUMMARY = f"{TITLE}: 779 behind the trajectory (87%)"
DESCRIPTION = (
    f"{TITLE}: 120 of 1,800 jobs (7%); expected 899 by now on the linear trajectory to "
    "2029-12-31; 779 behind (87%)."
)
WAIT_S = 90.0
"""Generous: the delivery consumer's group join alone takes ~5 s on the embedded broker."""

T = TypeVar("T")


def alerts_file(
    alertmanager_url: str, *, repeat_interval: str = "2s", receiver_repeat: str | None = None
) -> str:
    """Alertmanager as the only receiver, every alert routed to it, timings for a test.

    ``repeat_interval`` is the lifecycle's; ``receiver_repeat`` the Alertmanager receiver's own.
    """
    own = f"\n    repeat_interval: {receiver_repeat}" if receiver_repeat else ""
    return f"""\
version: 1
lifecycle:
  defaults: {{for: 0s, keep_firing_for: 0s}}
  repeat_interval: {repeat_interval}
  evaluation_interval: 1s
retry:
  initial_backoff: 1s
  max_backoff: 2s
  give_up_after: 60s
  timeout: 5s
receivers:
  - name: alertmanager
    kind: alertmanager
    url: {alertmanager_url}{own}
routes:
  - receivers: [alertmanager]
"""


def jobs_snapshot(evaluated_at: datetime, per_partition: tuple[int, int, int]) -> KpiSnapshot:
    """A ``jobs_created`` snapshot over all three partitions, fresh (last event an hour ago)."""
    parts = {p: {"sum": Decimal(n)} for p, n in enumerate(per_partition)}
    return KpiSnapshot(
        roadmap=ROADMAP,
        indicator=INDICATOR,
        value=Decimal(sum(per_partition)),
        expected=EXPECTED_AT_BEHIND,
        target=Decimal(1800),
        components={"sum": Decimal(sum(per_partition))},
        partitions=[0, 1, 2],
        partition_count=3,
        partition_components=parts,
        evaluated_at=evaluated_at,
        last_event_at=evaluated_at - timedelta(hours=1),
    )


async def publish_snapshot(producer: AIOKafkaProducer, topic: str, snapshot: KpiSnapshot) -> None:
    key = f"{snapshot.roadmap}/{snapshot.indicator}/0,1,2".encode()
    await producer.send_and_wait(topic, snapshot.model_dump_json().encode(), key=key)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], what: str, *, timeout: float = WAIT_S
) -> T:
    """Call ``probe`` until it returns something other than None; ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await probe()
        if found is not None:
            return found
        await asyncio.sleep(0.25)
    raise TimeoutError(f"not within {timeout}s: {what}")


def is_ours(labels: dict[str, Any]) -> bool:
    return all(labels.get(k) == v for k, v in IDENTITY.items())


def notifications(receiver: RecordingReceiver) -> list[tuple[Received, dict[str, Any]]]:
    """Alertmanager's webhook notifications about our alert, each with our alert's entry."""
    found = []
    for request in receiver.accepted(WEBHOOK_PATH):
        body = request.json()
        for alert in body.get("alerts", []):
            if is_ours(alert.get("labels", {})):
                found.append((request, body))
                break
    return found


def entry(body: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in body["alerts"] if is_ours(a["labels"]))


async def ours_in(
    alertmanager: RunningAlertmanager, **filters: str | bool
) -> dict[str, Any] | None:
    """Our alert as ``GET /api/v2/alerts`` (with ``filters``) lists it, or None."""
    return next((a for a in await alertmanager.alerts(**filters) if is_ours(a["labels"])), None)


def diagnose(step: str, alertmanager: RunningAlertmanager, receiver: RecordingReceiver) -> str:
    return (
        f"{step}\nwebhook requests: {[(r.path, r.status) for r in receiver.requests]}"
        f"\nalertmanager log ({alertmanager.log_path}) ends:\n{alertmanager.log_tail()}"
    )


@contextlib.asynccontextmanager
async def alerts_service(
    kafka_settings: KafkaSettings, alerts_text: str, workdir: Path
) -> AsyncIterator[str]:
    """The alerts service in-process on the event clock with ``alerts_text`` as its alerts
    file; yields its base URL once ready."""
    alerts_path = workdir / "alerts.yaml"
    alerts_path.write_text(alerts_text)
    port = free_port()
    settings = AlertsSettings(
        http_port=port,
        file=alerts_path,
        roadmap_file=ROADMAP_FILE,
        clock="event",
        external_url=f"http://127.0.0.1:{port}",
        delivery_group_id=unique_name("e2e-alerts-delivery"),
        log_format="text",
        kafka=kafka_settings,
    )
    async with running_app(create_app(settings)) as base_url:
        yield base_url


@pytest.fixture
async def kpi_producer(kafka_settings: KafkaSettings) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def test_alert_fires_in_alertmanager_routes_to_webhook_and_resolves(
    alertmanager: RunningAlertmanager,
    webhook_receiver: RecordingReceiver,
    kafka_settings: KafkaSettings,
    kpi_producer: AIOKafkaProducer,
    tmp_path: Path,
) -> None:
    """A shortfall published as KPI snapshots reaches a real Alertmanager and back out.

    Checks that ``RoadmapTargetBehind`` for ``jobs_created`` appears in Alertmanager's
    ``GET /api/v2/alerts`` as an active alert with exactly the five identity labels, the
    hand-computed summary and description and figure annotations, the service's generator
    URL, and the ``webhook`` receiver; that Alertmanager notifies the webhook with status
    ``firing`` and those labels; and that once a snapshot puts the indicator back on its
    trajectory, Alertmanager drops it from its list of (active) alerts and notifies the webhook
    with status ``resolved`` (``send_resolved``), and it does not come back on a later repeat.
    """
    kpi_topic = kafka_settings.topic_name(KPI_SNAPSHOTS)

    async def ours_in_alertmanager(**filters: str | bool) -> dict[str, Any] | None:
        return await ours_in(alertmanager, **filters)

    async def gone_from_alertmanager() -> bool | None:
        listed = await ours_in_alertmanager()
        active = await ours_in_alertmanager(active=True)
        return True if listed is None and active is None else None

    def failed(exc: Exception) -> AssertionError:
        return AssertionError(diagnose(str(exc), alertmanager, webhook_receiver))

    async with alerts_service(kafka_settings, alerts_file(alertmanager.url), tmp_path) as service:
        # 1. Behind the trajectory: Alertmanager lists the alert.
        await publish_snapshot(kpi_producer, kpi_topic, jobs_snapshot(BEHIND_AT, (50, 40, 30)))
        try:
            shown = await eventually(ours_in_alertmanager, "RoadmapTargetBehind in Alertmanager")
        except TimeoutError as exc:
            raise failed(exc) from exc
        assert shown["labels"] == IDENTITY
        assert shown["status"]["state"] == "active"
        assert shown["status"]["silencedBy"] == []
        assert shown["status"]["inhibitedBy"] == []
        assert [r["name"] for r in shown["receivers"]] == ["webhook"]
        assert shown["generatorURL"] == f"{service}/v1/alerts"
        notes = shown["annotations"]
        assert notes["summary"] == SUMMARY
        assert notes["description"] == DESCRIPTION
        assert notes["actual"] == "120"
        assert Decimal(notes["expected"]).quantize(Decimal("0.01")) == EXPECTED_AT_BEHIND
        assert Decimal(notes["shortfall"]).quantize(Decimal("0.01")) == Decimal("778.52")
        assert notes["target"] == "1800"
        assert notes["unit"] == "jobs"
        assert notes["deadline"] == "2029-12-31"
        assert notes["runbook_url"] == "docs/runbooks.md#jobs_created"
        assert notes["since"] == BEHIND_AT.isoformat()
        assert notes["dedup_key"]
        starts = datetime.fromisoformat(shown["startsAt"])
        ends = datetime.fromisoformat(shown["endsAt"])
        assert starts <= datetime.now(UTC) < ends, (starts, ends)
        # The same alert, seen by Alertmanager's own "active" filter and in its groups.
        active = await ours_in_alertmanager(active=True, silenced=False, inhibited=False)
        assert active is not None
        assert active["fingerprint"] == shown["fingerprint"]
        groups = await alertmanager.alert_groups()
        ours = [g for g in groups if any(is_ours(a["labels"]) for a in g["alerts"])]
        assert len(ours) == 1
        assert ours[0]["labels"] == {"alertname": "RoadmapTargetBehind", "indicator": INDICATOR}
        assert ours[0]["receiver"]["name"] == "webhook"
        # No stale alert for jobs_created: its last event is an hour before the roadmap time.
        about_jobs = [
            a["labels"]["alertname"]
            for a in await alertmanager.alerts()
            if a["labels"].get("indicator") == INDICATOR
        ]
        assert about_jobs == ["RoadmapTargetBehind"]

        # 2. Alertmanager routes it to the webhook: one "firing" notification for the group.
        try:
            await webhook_receiver.wait_for(lambda _: bool(notifications(webhook_receiver)))
        except TimeoutError as exc:
            raise failed(exc) from exc
        _, fired = notifications(webhook_receiver)[0]
        assert fired["status"] == "firing"
        assert fired["receiver"] == "webhook"
        assert fired["groupLabels"] == {"alertname": "RoadmapTargetBehind", "indicator": INDICATOR}
        assert fired["commonLabels"] == IDENTITY
        assert len(fired["alerts"]) == 1
        fired_alert = entry(fired)
        assert fired_alert["status"] == "firing"
        assert fired_alert["labels"] == IDENTITY
        assert fired_alert["annotations"]["summary"] == SUMMARY
        assert fired_alert["fingerprint"] == shown["fingerprint"]

        # 3. Back on the trajectory an hour later: resolved in Alertmanager and at the webhook.
        await publish_snapshot(
            kpi_producer, kpi_topic, jobs_snapshot(RECOVERED_AT, (400, 350, 250))
        )
        try:
            await eventually(gone_from_alertmanager, "RoadmapTargetBehind gone from Alertmanager")
            await webhook_receiver.wait_for(
                lambda _: any(b["status"] == "resolved" for _, b in notifications(webhook_receiver))
            )
        except TimeoutError as exc:
            raise failed(exc) from exc
        sent = notifications(webhook_receiver)
        statuses = [body["status"] for _, body in sent]
        assert statuses == ["firing", "resolved"], statuses
        resolved = entry(sent[1][1])
        assert resolved["status"] == "resolved"
        assert resolved["labels"] == IDENTITY
        assert resolved["fingerprint"] == shown["fingerprint"]
        # The API shows milliseconds, the webhook microseconds: the same start either way.
        resolved_starts = datetime.fromisoformat(resolved["startsAt"])
        assert abs(resolved_starts - starts) < timedelta(milliseconds=1)
        resolved_ends = datetime.fromisoformat(resolved["endsAt"])
        assert resolved_starts <= resolved_ends <= datetime.now(UTC)

        # 4. It stays resolved: no repeat (every 2 s while firing) brings it back.
        await asyncio.sleep(5)
        assert await ours_in_alertmanager() is None
        assert [body["status"] for _, body in notifications(webhook_receiver)] == statuses


async def test_alert_stays_active_in_alertmanager_with_receiver_repeat_interval(
    alertmanager: RunningAlertmanager,
    webhook_receiver: RecordingReceiver,
    kafka_settings: KafkaSettings,
    kpi_producer: AIOKafkaProducer,
    tmp_path: Path,
) -> None:
    """A firing alert stays active in Alertmanager when its receiver repeats less often.

    The alerts file accepts ``repeat_interval`` on an ``alertmanager`` receiver ("send a
    repeat at most this often"). With the lifecycle repeating every 1 s and the receiver every
    30 s, checks that for 10 s after ``RoadmapTargetBehind`` fired (the condition still
    holding, the service still reporting it firing on ``/v1/alerts``) Alertmanager keeps
    listing it as active and never tells the webhook it resolved.
    """
    text = alerts_file(alertmanager.url, repeat_interval="1s", receiver_repeat="30s")
    kpi_topic = kafka_settings.topic_name(KPI_SNAPSHOTS)
    async with (
        alerts_service(kafka_settings, text, tmp_path) as service,
        httpx.AsyncClient(base_url=service, timeout=5) as client,
    ):
        await publish_snapshot(kpi_producer, kpi_topic, jobs_snapshot(BEHIND_AT, (50, 40, 30)))
        try:
            shown = await eventually(
                lambda: ours_in(alertmanager), "RoadmapTargetBehind in Alertmanager"
            )
        except TimeoutError as exc:
            raise AssertionError(diagnose(str(exc), alertmanager, webhook_receiver)) from exc
        assert shown["status"]["state"] == "active"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            listed = (await client.get("/v1/alerts")).json()["alerts"]
            states = [r["state"] for r in listed if is_ours(r["labels"])]
            assert states == ["firing"], states  # the service: still firing
            now_in_am = await ours_in(alertmanager)
            resolved_sent = [
                b for _, b in notifications(webhook_receiver) if b["status"] == "resolved"
            ]
            assert now_in_am is not None, (
                f"Alertmanager no longer lists the firing alert (its endsAt was "
                f"{shown['endsAt']}); webhook notifications: "
                f"{[b['status'] for _, b in notifications(webhook_receiver)]}"
            )
            assert not resolved_sent
            await asyncio.sleep(0.5)
