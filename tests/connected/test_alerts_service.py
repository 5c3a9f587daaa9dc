"""The alerts service against a real broker: KPI snapshots in, alert records and notifications out.

Every test has its own topic prefix and delivery group, publishes the KPI snapshots itself (every
indicator of ``deploy/roadmap.yaml`` over all three partitions, at target unless the test puts it
behind) and runs the service on ``ROADMAP_CLOCK=event``, so the roadmap's "now" is the newest
snapshot's ``evaluated_at``: 2027-07-01 (T0), then a day later (T1), then two (T2). Receivers
are ``RecordingReceiver``s: real loopback HTTP servers answering what the test scripts.

The jobs_created trajectory by hand: linear from 0 at 2025-01-01T00:00Z to 1,800 at the END of
2029-12-31 (2030-01-01T00:00Z): 5 * 365 + 1 (2028 is a leap year) = 1,826 days. T0 is 365 + 365
+ 181 = 911 days in, so 1,800 * 911 / 1,826 = 898.03 jobs are expected; T1 (912 days) 899.01;
T2 (913 days) exactly half way, 900. An indicator is behind below 90% of that (tolerance 0.10).

1. One episode, pending -> firing -> repeats -> resolved, run once (module fixture) and checked
by several tests: the records, the numbers in the text, /v1/alerts, /metrics, the webhook;
2. what a signed webhook, a chat webhook and Alertmanager receive; 3. 503s and 429s are retried
until every notification is accepted; 4. a 400 is not retried; 5. SIGKILL with undelivered
notifications loses none and opens no new episode; 6. a graceful restart keeps the alert state;
7. the pipeline alert fires on the DLQ share of what reaches the topics, and resolves.
5 and 6 run ``roadmap-monitor run alerts`` as a process; the others run the app in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from contracts.records import (
    IDENTITY_LABELS,
    AlertName,
    AlertState,
    AlertTransition,
    KpiSnapshot,
)
from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, KPI_SNAPSHOTS, TopicSpec
from services.alerts.app import create_app
from services.alerts.settings import AlertsSettings
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.common.topics import ensure_topics
from tests.support.alerts_stack import (
    ROADMAP_ID,
    Samples,
    alert_records,
    alerts_view,
    nonzero,
    of,
    on_target,
    publish_snapshots,
    scrape,
    series,
    snapshot,
    until_states,
    write_alerts_file,
)
from tests.support.kafka import RealBroker, unique_name
from tests.support.receiver import Answer, Received, RecordingReceiver, always
from tests.support.services import running_app, spawn_service, wait_ready
from tests.support.waiting import until

T0 = datetime(2027, 7, 1, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
T2 = T0 + timedelta(days=2)

JOBS, VENTURES, FREIGHT = "jobs_created", "joint_ventures_operational", "road_freight_tonnes"
BEHIND = AlertName.TARGET_BEHIND.value
ACTIVE = "roadmap_alerts_active"
SENT = "roadmap_alerts_notifications_sent_total"
FAILED = "roadmap_alerts_notifications_failed_total"
RETRIED = "roadmap_alerts_notifications_retried_total"
SKIPPED = "roadmap_alerts_notifications_skipped_total"
TRANSITIONS = "roadmap_alerts_transitions_total"
TIMEOUT = 90.0
"""Generous: the embedded broker takes ~5 s to join a group, ~18 s to rejoin after a kill."""


def _labels(indicator: str, severity: str, owner: str = "industry-office") -> dict[str, str]:
    return {
        "alertname": BEHIND,
        "indicator": indicator,
        "severity": severity,
        "owner": owner,
        "roadmap": ROADMAP_ID,
    }


def _kafka(broker: RealBroker) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_prefix=unique_name("alerts") + "."
    )


def _settings(kafka: KafkaSettings, alerts_file: Path) -> AlertsSettings:
    return AlertsSettings(
        http_port=free_port(),
        file=alerts_file,
        clock="event",
        delivery_group_id=unique_name("alerts-delivery"),
        external_url="http://alerts.example:8003/",
        log_format="text",
        kafka=kafka,
    )


def _env_name(what: str) -> str:
    """A variable name no other test (or the deployment) uses."""
    return f"ALERTS_TEST_{what}_{uuid.uuid4().hex[:8].upper()}"


async def _start_with(kafka: KafkaSettings, snapshots: Sequence[KpiSnapshot]) -> None:
    """Create the KPI topic and put ``snapshots`` on it before the service starts, so its first
    evaluation sees every indicator."""
    await ensure_topics(kafka, [KPI_SNAPSHOTS])
    await publish_snapshots(kafka, snapshots)


def _webhook(url: str, secret_var: str) -> dict[str, str]:
    """The alerts file's entry for a webhook receiver named ``hook``."""
    return {"name": "hook", "kind": "webhook", "url": url, "secret_env": secret_var}


def _at_least(count: int) -> Callable[[list[Received]], bool]:
    return lambda requests: len(requests) >= count


def _hmac(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _notified(requests: Sequence[Received]) -> list[tuple[str, str, str]]:
    """(indicator, state, dedup key) of each webhook request, in arrival order."""
    found = []
    for request in requests:
        record = AlertTransition.model_validate_json(request.body)
        assert request.headers["x-roadmap-dedup-key"] == record.dedup_key
        found.append((record.labels["indicator"], record.state.value, record.dedup_key))
    return found


def _episodes(records: Sequence[AlertTransition]) -> dict[str, list[tuple[str, str, int]]]:
    """Per indicator: (state, dedup key, repeat) of each record, in topic order."""
    found: dict[str, list[tuple[str, str, int]]] = {}
    for record in records:
        found.setdefault(record.labels["indicator"], []).append(
            (record.state.value, record.dedup_key, record.repeat)
        )
    return found


def _about(expected: str, exact: Decimal) -> bool:
    """An annotation holding ``exact`` to 20 decimal places (the service divides seconds)."""
    return abs(Decimal(expected) - exact) < Decimal("1e-20")


# ---------------------------------------------------------------------------------------------
# 1. One episode: pending, firing, repeats, resolved.


@dataclass(frozen=True)
class Episode:
    """What one run of the service showed of one RoadmapTargetBehind episode of jobs_created."""

    records: list[AlertTransition]
    """The whole alerts topic at the end."""
    views: dict[str, list[AlertTransition]]
    """/v1/alerts once pending, firing and resolved."""
    metrics: dict[str, Samples]
    """/metrics at the same moments ("final": once every notification was counted)."""
    requests: list[Received]
    """What the webhook received."""

    @property
    def repeats(self) -> int:
        return len(self.records) - 3


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def episode(broker: RealBroker, tmp_path_factory: pytest.TempPathFactory) -> Episode:
    """jobs_created at 500 jobs at T0 (898.03 expected): behind, so pending; 520 at T1 (899.01
    expected): held for the alert's ``for`` of a day on the roadmap clock, so firing, repeated
    every 2 s on the wall clock until 900 at T2 (exactly on the trajectory) resolves it. A
    webhook (every repeat) and the console (repeats once an hour) are told."""
    kafka = _kafka(broker)
    secret_var = _env_name("SECRET")
    receiver = RecordingReceiver()
    alerts_file = write_alerts_file(
        tmp_path_factory.mktemp("episode") / "alerts.yaml",
        receivers=[
            _webhook(f"{receiver.url}/hook", secret_var),
            {"name": "console", "kind": "console", "repeat_interval": "1h"},
        ],
        repeat_interval="2s",
    )
    await _start_with(kafka, on_target(T0, jobs_created={"sum": 500}))
    views: dict[str, list[AlertTransition]] = {}
    metrics: dict[str, Samples] = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(secret_var, "s3cret")
        app = create_app(_settings(kafka, alerts_file))
    async with receiver.running(), running_app(app) as base_url:
        views["pending"] = await until_states(base_url, {JOBS: "pending"}, timeout=TIMEOUT)
        metrics["pending"] = await scrape(base_url)

        await publish_snapshots(kafka, [snapshot(JOBS, {"sum": 520}, T1)])
        views["firing"] = await until_states(base_url, {JOBS: "firing"}, timeout=TIMEOUT)
        metrics["firing"] = await scrape(base_url)
        # Delivery joins its group in a few seconds; then the firing record and a repeat.
        await receiver.wait_for(_at_least(2), timeout=TIMEOUT)

        await publish_snapshots(kafka, [snapshot(JOBS, {"sum": 900}, T2)])
        views["resolved"] = await until_states(base_url, {JOBS: "resolved"}, timeout=TIMEOUT)
        records = await alert_records(kafka)
        await receiver.wait_for(_at_least(len(records) - 1), timeout=TIMEOUT)
        metrics["final"] = await until(
            "every notification counted",
            lambda: scrape(base_url),
            lambda s: series(s, SENT, receiver="hook") == len(records) - 1,
        )
    print(f"\none episode: {[(r.state.value, r.repeat) for r in records]}")
    return Episode(records, views, metrics, list(receiver.requests))


def test_episode_records_go_pending_firing_repeated_resolved_under_one_dedup_key(
    episode: Episode,
) -> None:
    """The alerts topic holds exactly pending, firing, its repeats (numbered from 1, each
    pointing at the previous firing record) and resolved, every one keyed ``alert_key(labels)``
    (checked while reading), with the episode's labels, one dedup key, ``since`` T0 on the
    roadmap clock and ``started_at`` the wall time of the pending record."""
    records, repeats = episode.records, episode.repeats
    assert repeats >= 1
    assert [(r.state.value, r.repeat) for r in records] == [
        ("pending", 0),
        ("firing", 0),
        *[("firing", n) for n in range(1, repeats + 1)],
        ("resolved", 0),
    ]
    assert {r.alertname for r in records} == {AlertName.TARGET_BEHIND}
    assert all(r.labels == _labels(JOBS, "warning") for r in records)
    assert len({r.dedup_key for r in records}) == 1
    assert all(r.since == T0 and r.started_at == records[0].at for r in records)
    assert [r.previous_at for r in records[1:-1]] == [None, *[r.at for r in records[1:-2]]]
    assert all(a.at <= b.at for a, b in pairwise(records))


def test_episode_annotations_carry_the_hand_computed_figures_and_sentences(
    episode: Episode,
) -> None:
    """Pending says 500 of 1,800 jobs against 898.03 expected at T0 (911 of 1,826 days);
    firing and its repeats 520 against 899.01 at T1 (912 days), each worded for a reader
    (rounded, grouped, percentages); resolved keeps the last figures and adds when, on the
    roadmap clock, it resolved."""
    records = episode.records
    pending, resolved = records[0], records[-1]
    expected_t0 = Decimal(1800) * 911 / 1826
    expected_t1 = Decimal(1800) * 912 / 1826
    title = "Jobs created by joint industrial projects"
    common = {
        "target": "1800",
        "unit": "jobs",
        "deadline": "2029-12-31",
        "runbook_url": "docs/runbooks.md#jobs_created",
        "since": "2027-07-01T00:00:00+00:00",
    }
    assert {k: pending.annotations[k] for k in common} == common
    assert pending.annotations["actual"] == "500"
    assert _about(pending.annotations["expected"], expected_t0)
    assert _about(pending.annotations["shortfall"], expected_t0 - 500)
    assert pending.annotations["summary"] == f"{title}: 398 behind the trajectory (44%)"
    assert pending.annotations["description"] == (
        f"{title}: 500 of 1,800 jobs (28%); expected 898 by now on the linear trajectory to "
        "2029-12-31; 398 behind (44%)."
    )
    for record in records[1:-1]:  # firing and its repeats: the figures at T1
        assert {k: record.annotations[k] for k in common} == common
        assert record.annotations["actual"] == "520"
        assert _about(record.annotations["expected"], expected_t1)
        assert _about(record.annotations["shortfall"], expected_t1 - 520)
        assert record.annotations["summary"] == f"{title}: 379 behind the trajectory (42%)"
        assert record.annotations["description"] == (
            f"{title}: 520 of 1,800 jobs (29%); expected 899 by now on the linear trajectory "
            "to 2029-12-31; 379 behind (42%)."
        )
    assert resolved.annotations == {
        **records[-2].annotations,
        "resolved_at": "2027-07-03T00:00:00+00:00",
    }


def test_episode_shows_on_v1_alerts_metrics_and_the_webhook_in_order(episode: Episode) -> None:
    """/v1/alerts lists the alert's latest record in each state; roadmap_alerts_active counts
    it pending, then firing, then nothing; the evaluation time is the newest snapshot's;
    transitions count 1 pending, 1 + repeats firing, 1 resolved. The webhook received firing,
    every repeat and resolved in topic order (sent_total counts them), the console receiver
    firing and resolved; nothing was retried or failed."""
    records, views, metrics = episode.records, episode.views, episode.metrics
    firing = records[1]
    assert views["pending"] == [records[0]]
    assert [(r.state, r.dedup_key) for r in views["firing"]] == [
        (AlertState.FIRING, firing.dedup_key)
    ]
    assert views["resolved"] == [records[-1]]
    assert nonzero(metrics["pending"], ACTIVE) == {f"{BEHIND}/warning/pending": 1}
    assert nonzero(metrics["firing"], ACTIVE) == {f"{BEHIND}/warning/firing": 1}
    assert nonzero(metrics["final"], ACTIVE) == {}
    evaluated_at = "roadmap_alerts_evaluation_timestamp_seconds"
    assert series(metrics["pending"], evaluated_at) == T0.timestamp()
    assert series(metrics["firing"], evaluated_at) == T1.timestamp()
    assert series(metrics["final"], evaluated_at) == T2.timestamp()
    assert nonzero(metrics["final"], TRANSITIONS) == {
        f"{BEHIND}/pending": 1,
        f"{BEHIND}/firing": 1 + episode.repeats,
        f"{BEHIND}/resolved": 1,
    }
    notified = records[1:]
    assert [AlertTransition.model_validate_json(r.body) for r in episode.requests] == notified
    assert {(r.path, r.status) for r in episode.requests} == {("/hook", 200)}
    assert series(metrics["final"], SENT, receiver="hook") == len(notified)
    assert series(metrics["final"], SENT, receiver="console") == 2  # firing and resolved
    assert nonzero(metrics["final"], RETRIED) == {}
    assert nonzero(metrics["final"], FAILED) == {}


def test_episode_skipped_counts_only_withheld_notifications(episode: Episode) -> None:
    """roadmap_alerts_notifications_skipped_total is "records a routed receiver did not want
    (a repeat inside its interval, a resolution it does not take)". The console receiver,
    repeating once an hour, withheld exactly the repeats; the webhook withheld nothing. A
    pending record is not a notification (no receiver is ever sent one), so it must not count:
    today it is counted once for each receiver."""
    final = episode.metrics["final"]
    assert series(final, SKIPPED, receiver="console") == episode.repeats
    assert series(final, SKIPPED, receiver="hook") == 0


# ---------------------------------------------------------------------------------------------
# 2. What each kind of receiver gets.


async def test_webhook_is_signed_chat_gets_text_and_alertmanager_gets_api_v2_alerts(
    broker: RealBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routes as in deploy/alerts.yaml: Alertmanager gets everything, the webhook warning and
    critical alerts, chat only critical ones. jobs_created (warning, 500 jobs) and
    joint_ventures_operational (critical, 9 of 11) fire at once (``for`` 0s) at T0; the
    ventures are back to 11 at T1 and resolve. The webhook body is the alert record's JSON,
    signed ``sha256=<hex HMAC>`` over the exact bytes with the secret (checked here with
    ``hmac``), its X-Roadmap-Dedup-Key the record's dedup key; chat gets ``{"text": ...}`` with
    the headline, the hand-computed sentence, since when and the runbook; Alertmanager gets
    ``POST /api/v2/alerts`` with the identity labels, the annotations plus the dedup key,
    startsAt, endsAt (four repeat intervals ahead while firing, the record's time once
    resolved) and the service's /v1/alerts as generatorURL."""
    kafka = _kafka(broker)
    secret_var, secret = _env_name("SECRET"), b"webhook-key-\xce\xbb"
    monkeypatch.setenv(secret_var, secret.decode())
    hook, chat, am = RecordingReceiver(), RecordingReceiver(), RecordingReceiver()
    alerts_file = write_alerts_file(
        tmp_path / "alerts.yaml",
        receivers=[
            {"name": "am", "kind": "alertmanager", "url": am.url},
            _webhook(f"{hook.url}/hooks/roadmap", secret_var),
            {"name": "chat", "kind": "chat", "url": f"{chat.url}/services/T0/B0"},
        ],
        routes=[
            {"receivers": ["am"]},
            {"match": {"severity": ["warning", "critical"]}, "receivers": ["hook"]},
            {"match": {"severity": ["critical"]}, "receivers": ["chat"]},
        ],
        for_="0s",
    )
    await _start_with(kafka, on_target(T0, jobs_created={"sum": 500}, **{VENTURES: {"count": 9}}))
    settings = _settings(kafka, alerts_file)
    async with (
        hook.running(),
        chat.running(),
        am.running(),
        running_app(create_app(settings)) as base_url,
    ):
        await until_states(base_url, {JOBS: "firing", VENTURES: "firing"}, timeout=TIMEOUT)
        await publish_snapshots(kafka, [snapshot(VENTURES, {"count": 11}, T1)])
        await until_states(base_url, {JOBS: "firing", VENTURES: "resolved"}, timeout=TIMEOUT)
        for receiver, count in ((hook, 3), (am, 3), (chat, 2)):
            await receiver.wait_for(_at_least(count), timeout=TIMEOUT)
        metrics = await scrape(base_url)
    records = await alert_records(kafka)

    jobs_key, ventures_key = of(records, JOBS)[0].dedup_key, of(records, VENTURES)[0].dedup_key
    assert _episodes(records) == {
        JOBS: [("firing", jobs_key, 0)],
        VENTURES: [("firing", ventures_key, 0), ("resolved", ventures_key, 0)],
    }
    by_key = {(r.dedup_key, r.state): r for r in records}
    assert len(by_key) == 3
    ventures_firing, ventures_resolved = of(records, VENTURES)
    assert ventures_resolved.annotations["resolved_at"] == T1.isoformat()
    assert series(metrics, SENT, receiver="hook") == 3
    assert series(metrics, SENT, receiver="am") == 3
    assert series(metrics, SENT, receiver="chat") == 2

    # Webhook: exact bodies, signed with the secret, per alert in order.
    assert len(hook.requests) == 3
    for request in hook.requests:
        assert request.path == "/hooks/roadmap"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-roadmap-signature"] == _hmac(secret, request.body)
        assert request.headers["x-roadmap-signature"] != _hmac(b"another key", request.body)
        record = AlertTransition.model_validate_json(request.body)
        assert request.headers["x-roadmap-dedup-key"] == record.dedup_key
        assert by_key[(record.dedup_key, record.state)] == record
        assert request.body == record.model_dump_json().encode()
    received = [AlertTransition.model_validate_json(r.body) for r in hook.requests]
    assert of(received, VENTURES) == [ventures_firing, ventures_resolved]
    assert of(received, JOBS) == of(records, JOBS)

    # Chat: only the critical alert, as text an on-call person can act on.
    headline = "RoadmapTargetBehind joint_ventures_operational (critical, owner industry-office)"
    sentence = (
        "Operational joint ventures: 9 of 11 ventures (82%); expected 11 by now on the linear "
        "trajectory to 2029-12-31; 2 behind (18%)."
    )
    runbook = "Runbook: docs/runbooks.md#joint_ventures_operational"
    assert [(r.path, r.headers["x-roadmap-dedup-key"]) for r in chat.requests] == [
        ("/services/T0/B0", ventures_firing.dedup_key)
    ] * 2
    assert [r.json() for r in chat.requests] == [
        {"text": f"[FIRING] {headline}\n{sentence}\nSince 2027-07-01 00:00 UTC\n{runbook}"},
        {
            "text": f"[RESOLVED] {headline}\nCleared. When it last fired: {sentence}\n"
            f"Since 2027-07-01 00:00 UTC; resolved 2027-07-02 00:00 UTC\n{runbook}"
        },
    ]

    # Alertmanager: API v2 alerts, per alert in order.
    def rfc3339(moment: datetime) -> str:
        return moment.isoformat().replace("+00:00", "Z")

    def alertmanager(record: AlertTransition) -> list[dict[str, Any]]:
        ends = record.at if record.state is AlertState.RESOLVED else record.at + timedelta(hours=4)
        return [
            {
                "labels": {name: record.labels[name] for name in IDENTITY_LABELS},
                "annotations": {**record.annotations, "dedup_key": record.dedup_key},
                "startsAt": rfc3339(record.started_at),
                "endsAt": rfc3339(ends),
                "generatorURL": "http://alerts.example:8003/v1/alerts",
            }
        ]

    assert {r.path for r in am.requests} == {"/api/v2/alerts"}
    bodies = [r.json() for r in am.requests]
    assert sorted(json.dumps(b, sort_keys=True) for b in bodies) == sorted(
        json.dumps(alertmanager(r), sort_keys=True) for r in records
    )
    ventures_bodies = [b for b in bodies if b[0]["labels"]["indicator"] == VENTURES]
    assert ventures_bodies == [alertmanager(ventures_firing), alertmanager(ventures_resolved)]
    assert ventures_bodies[1][0]["labels"] == _labels(VENTURES, "critical")
    assert [r.headers["x-roadmap-dedup-key"] for r in am.requests] == [
        b[0]["annotations"]["dedup_key"] for b in bodies
    ]


# ---------------------------------------------------------------------------------------------
# 3. Retried until accepted.


async def test_503_and_429_are_retried_until_every_notification_is_accepted_in_order(
    broker: RealBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook answers 503, 503, 429 with Retry-After: 1, 503, 503 to its first five
    requests, then 200. Three alerts fire at T0 (jobs_created, road_freight_tonnes,
    joint_ventures_operational) and resolve at T1: all six notifications are accepted exactly
    once, firing before resolved for each alert; the refused one was sent again unchanged;
    the attempt after the 429 came at least the Retry-After second later; /metrics counts 6
    sent, 5 retried and nothing failed."""
    kafka = _kafka(broker)
    secret_var = _env_name("SECRET")
    monkeypatch.setenv(secret_var, "retry-key")
    refusals: dict[int, Answer] = {
        0: (503, {}),
        1: (503, {}),
        2: (429, {"Retry-After": "1"}),
        3: (503, {}),
        4: (503, {}),
    }
    receiver = RecordingReceiver(answer=lambda n: refusals.get(n, (200, {})))
    alerts_file = write_alerts_file(
        tmp_path / "alerts.yaml",
        receivers=[_webhook(f"{receiver.url}/hook", secret_var)],
        for_="0s",
    )
    behind = {JOBS: {"sum": 500}, FREIGHT: {"sum": 1_000_000}, VENTURES: {"count": 10}}
    await _start_with(kafka, on_target(T0, **behind))
    settings = _settings(kafka, alerts_file)
    async with receiver.running(), running_app(create_app(settings)) as base_url:
        await until_states(
            base_url, {JOBS: "firing", FREIGHT: "firing", VENTURES: "firing"}, timeout=TIMEOUT
        )
        await publish_snapshots(kafka, on_target(T1))
        await until_states(
            base_url,
            {JOBS: "resolved", FREIGHT: "resolved", VENTURES: "resolved"},
            timeout=TIMEOUT,
        )
        await receiver.wait_for(lambda requests: len(receiver.accepted()) >= 6, timeout=TIMEOUT)
        metrics = await until(
            "six notifications counted",
            lambda: scrape(base_url),
            lambda s: series(s, SENT, receiver="hook") == 6,
        )
    records = await alert_records(kafka)

    statuses = [r.status for r in receiver.requests]
    print(f"\nretries: answers {statuses}")
    assert statuses == [503, 503, 429, 503, 503, 200, 200, 200, 200, 200, 200]
    accepted = _notified(receiver.accepted())
    assert sorted(accepted) == sorted(
        (r.labels["indicator"], r.state.value, r.dedup_key) for r in records
    )
    assert len(set(accepted)) == 6
    for indicator in (JOBS, FREIGHT, VENTURES):
        assert [state for i, state, _ in accepted if i == indicator] == ["firing", "resolved"]
        assert len({key for i, _, key in accepted if i == indicator}) == 1
    refused = {r.body for r in receiver.requests if r.status != 200}
    assert len(refused) == 1, "one notification at a time: all five refusals are the first"
    assert refused <= {r.body for r in receiver.accepted()}
    after_429 = receiver.requests[3].monotonic - receiver.requests[2].monotonic
    assert after_429 >= 0.99, f"the retry after a 429 with Retry-After: 1 came {after_429:.2f}s"
    assert series(metrics, SENT, receiver="hook") == 6
    assert series(metrics, RETRIED, receiver="hook") == 5
    assert series(metrics, FAILED, receiver="hook", reason="rejected") == 0
    assert series(metrics, FAILED, receiver="hook", reason="gave_up") == 0


# ---------------------------------------------------------------------------------------------
# 4. A 4xx is final.


async def test_400_is_not_retried_and_does_not_hold_up_later_notifications(
    broker: RealBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook answers 400 to everything. Two alerts fire at T0 and one resolves at T1:
    each of the three notifications is sent exactly once (a refused request cannot succeed by
    repeating it), the next ones still go out, and /metrics counts 3 failed as ``rejected``,
    nothing retried, sent or given up."""
    kafka = _kafka(broker)
    secret_var = _env_name("SECRET")
    monkeypatch.setenv(secret_var, "rejecting-key")
    receiver = RecordingReceiver(answer=always(400))
    alerts_file = write_alerts_file(
        tmp_path / "alerts.yaml",
        receivers=[_webhook(f"{receiver.url}/hook", secret_var)],
        for_="0s",
    )
    await _start_with(kafka, on_target(T0, jobs_created={"sum": 500}, **{VENTURES: {"count": 9}}))
    settings = _settings(kafka, alerts_file)
    async with receiver.running(), running_app(create_app(settings)) as base_url:
        await until_states(base_url, {JOBS: "firing", VENTURES: "firing"}, timeout=TIMEOUT)
        await receiver.wait_for(lambda requests: len(requests) >= 2, timeout=TIMEOUT)
        await publish_snapshots(kafka, [snapshot(VENTURES, {"count": 11}, T1)])
        await receiver.wait_for(lambda requests: len(requests) >= 3, timeout=TIMEOUT)
        # Longer than two backoffs (at most 1 s each): a retry would have come by now.
        metrics = await until(
            "three rejections counted",
            lambda: scrape(base_url),
            lambda s: series(s, FAILED, receiver="hook", reason="rejected") == 3,
        )
        with contextlib.suppress(TimeoutError):
            await receiver.wait_for(lambda requests: len(requests) > 3, timeout=2.5)
        metrics = await scrape(base_url)
    records = await alert_records(kafka)

    assert [r.status for r in receiver.requests] == [400, 400, 400]
    notified = _notified(receiver.requests)
    assert sorted(notified) == sorted(
        (r.labels["indicator"], r.state.value, r.dedup_key) for r in records
    )
    assert [state for i, state, _ in notified if i == VENTURES] == ["firing", "resolved"]
    assert series(metrics, FAILED, receiver="hook", reason="rejected") == 3
    assert series(metrics, FAILED, receiver="hook", reason="gave_up") == 0
    assert series(metrics, RETRIED, receiver="hook") == 0
    assert series(metrics, SENT, receiver="hook") == 0


# ---------------------------------------------------------------------------------------------
# 5 and 6. A real process, killed or stopped, and its successor.


def _process_env(
    kafka: KafkaSettings, alerts_file: Path, group: str, extra: Mapping[str, str]
) -> tuple[dict[str, str], str]:
    """Environment for ``roadmap-monitor run alerts`` on event time, and its base URL."""
    port = free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "ALERTS_HTTP_PORT": str(port),
        "ALERTS_FILE": str(alerts_file),
        "ALERTS_DELIVERY_GROUP_ID": group,
        "ALERTS_LOG_FORMAT": "text",
        "ROADMAP_CLOCK": "event",
        **extra,
    }
    return env, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def _alerts_process(env: Mapping[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``spawn_service('alerts')``; when the block fails, the end of its log is printed."""
    with spawn_service("alerts", env, log_path=log_path) as process:
        try:
            yield process
        except BaseException:
            print(f"--- {log_path.name} (last lines) ---")
            print("\n".join(log_path.read_text(errors="replace").splitlines()[-40:]))
            raise


@contextlib.asynccontextmanager
async def _webhook_stack(
    tmp_path: Path, receiver: RecordingReceiver, kafka: KafkaSettings
) -> AsyncIterator[tuple[Path, dict[str, str], bytes]]:
    """The receiver running, an alerts file whose webhook reads its URL and secret from
    variables, and those variables."""
    url_var, secret_var, secret = _env_name("URL"), _env_name("SECRET"), b"process-key"
    alerts_file = write_alerts_file(
        tmp_path / "alerts.yaml",
        receivers=[
            {"name": "hook", "kind": "webhook", "url_env": url_var, "secret_env": secret_var}
        ],
    )
    async with receiver.running():
        yield alerts_file, {url_var: f"{receiver.url}/hook", secret_var: secret.decode()}, secret


async def test_sigkill_with_undelivered_notifications_loses_none_and_opens_no_new_episode(
    broker: RealBroker, tmp_path: Path
) -> None:
    """``roadmap-monitor run alerts`` sees jobs_created and joint_ventures_operational go
    pending at T0 and firing at T1, while the webhook answers 503 to everything. Once both
    firing records are on the topic and the webhook has refused an attempt, the process is
    SIGKILLed; the webhook starts answering 200 and a new process (same delivery group) starts.
    It recovers the alert state from the topic: it publishes nothing (no new pending or firing
    episode), shows both alerts firing, and delivers both firing notifications, signed, with
    their original dedup keys, each accepted once. The episodes then resolve at T2 with the
    same dedup keys."""
    kafka = _kafka(broker)
    receiver = RecordingReceiver(answer=always(503))
    group = unique_name("alerts-delivery")
    await _start_with(kafka, on_target(T0, jobs_created={"sum": 500}, **{VENTURES: {"count": 9}}))
    async with _webhook_stack(tmp_path, receiver, kafka) as (alerts_file, variables, secret):
        env, base_url = _process_env(kafka, alerts_file, group, variables)
        with _alerts_process(env, tmp_path / "alerts-1.log") as process:
            await wait_ready(base_url, timeout=TIMEOUT)
            await until_states(base_url, {JOBS: "pending", VENTURES: "pending"}, timeout=TIMEOUT)
            await publish_snapshots(kafka, [snapshot(JOBS, {"sum": 500}, T1)])
            await until_states(base_url, {JOBS: "firing", VENTURES: "firing"}, timeout=TIMEOUT)
            await receiver.wait_for(lambda requests: len(requests) >= 2, timeout=TIMEOUT)
            before_kill = await alert_records(kafka)
            process.send_signal(signal.SIGKILL)
            assert process.wait(timeout=10) == -signal.SIGKILL
        refused = list(receiver.requests)
        receiver.answer = always(200)

        env, base_url = _process_env(kafka, alerts_file, group, variables)
        with _alerts_process(env, tmp_path / "alerts-2.log") as process:
            await wait_ready(base_url, timeout=TIMEOUT)
            recovered = await alerts_view(base_url)
            await receiver.wait_for(lambda _: len(receiver.accepted()) >= 2, timeout=TIMEOUT)
            after_restart = await scrape(base_url)
            records_after_restart = await alert_records(kafka)
            await publish_snapshots(kafka, on_target(T2))
            await until_states(base_url, {JOBS: "resolved", VENTURES: "resolved"})
            await receiver.wait_for(lambda _: len(receiver.accepted()) >= 4, timeout=TIMEOUT)
            final = await until(
                "four notifications counted",
                lambda: scrape(base_url),
                lambda s: series(s, SENT, receiver="hook") == 4,
            )
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    records = await alert_records(kafka)

    print(
        f"\nSIGKILL: {len(refused)} refused attempts before the kill; after the restart "
        f"{len(receiver.accepted())} accepted, records {[(r.labels['indicator'], r.state.value) for r in records]}"  # noqa: E501
    )
    keys = {i: of(before_kill, i)[0].dedup_key for i in (JOBS, VENTURES)}
    assert _episodes(before_kill) == {
        i: [("pending", keys[i], 0), ("firing", keys[i], 0)] for i in (JOBS, VENTURES)
    }
    assert {r.status for r in refused} == {503}
    assert {k for _, _, k in _notified(refused)} <= set(keys.values())
    # The restarted process published nothing until T2: it knew both alerts were firing.
    assert records_after_restart == before_kill
    assert sorted((r.labels["indicator"], r.state.value) for r in recovered) == [
        (JOBS, "firing"),
        (VENTURES, "firing"),
    ]
    assert nonzero(after_restart, ACTIVE) == {
        f"{BEHIND}/critical/firing": 1,
        f"{BEHIND}/warning/firing": 1,
    }
    assert nonzero(after_restart, TRANSITIONS) == {}
    assert _episodes(records) == {
        i: [("pending", keys[i], 0), ("firing", keys[i], 0), ("resolved", keys[i], 0)]
        for i in (JOBS, VENTURES)
    }
    accepted = receiver.accepted()
    assert all(r.headers["x-roadmap-signature"] == _hmac(secret, r.body) for r in accepted)
    notified = _notified(accepted)
    assert sorted(notified) == sorted(
        (i, state, keys[i]) for i in (JOBS, VENTURES) for state in ("firing", "resolved")
    )
    for indicator in (JOBS, VENTURES):
        assert [s for i, s, _ in notified if i == indicator] == ["firing", "resolved"]
    assert nonzero(final, TRANSITIONS) == {f"{BEHIND}/resolved": 2}
    assert nonzero(final, FAILED) == {}
    # The logs name the receiver, never its URL (a chat URL is a credential) or its secret.
    logs = b"".join((tmp_path / f"alerts-{n}.log").read_bytes() for n in (1, 2))
    assert b"not accepted; retrying" in logs
    assert secret not in logs
    assert variables[next(k for k in variables if "URL" in k)].encode() not in logs


async def test_graceful_restart_keeps_firing_and_pending_alerts_without_new_episodes(
    broker: RealBroker, tmp_path: Path
) -> None:
    """``roadmap-monitor run alerts`` sees jobs_created go pending at T0 and fire at T1, when
    joint_ventures_operational falls behind and goes pending; the webhook accepts the firing
    notification. After SIGTERM (exit 0) a new process lists the same alert records on
    /v1/alerts, publishes nothing while nothing changes, and does not notify the firing alert
    again. At T2 the ventures' alert, pending since T1, has held for a day: it fires in the same
    episode (same dedup key, since T1) and is the only new notification."""
    kafka = _kafka(broker)
    receiver = RecordingReceiver()
    group = unique_name("alerts-delivery")
    await _start_with(kafka, on_target(T0, jobs_created={"sum": 500}))
    async with _webhook_stack(tmp_path, receiver, kafka) as (alerts_file, variables, _):
        env, base_url = _process_env(kafka, alerts_file, group, variables)
        with _alerts_process(env, tmp_path / "alerts-1.log") as process:
            await wait_ready(base_url, timeout=TIMEOUT)
            await until_states(base_url, {JOBS: "pending"}, timeout=TIMEOUT)
            await publish_snapshots(
                kafka, [snapshot(JOBS, {"sum": 500}, T1), snapshot(VENTURES, {"count": 9}, T1)]
            )
            before_stop = await until_states(
                base_url, {JOBS: "firing", VENTURES: "pending"}, timeout=TIMEOUT
            )
            await until(
                "the firing notification counted",
                lambda: scrape(base_url),
                lambda s: series(s, SENT, receiver="hook") == 1,
                timeout=TIMEOUT,
            )
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        records_before = await alert_records(kafka)

        env, base_url = _process_env(kafka, alerts_file, group, variables)
        with _alerts_process(env, tmp_path / "alerts-2.log") as process:
            await wait_ready(base_url, timeout=TIMEOUT)
            recovered = await alerts_view(base_url)
            await publish_snapshots(kafka, [snapshot(JOBS, {"sum": 500}, T2)])
            await until_states(base_url, {JOBS: "firing", VENTURES: "firing"}, timeout=TIMEOUT)
            await receiver.wait_for(lambda requests: len(requests) >= 2, timeout=TIMEOUT)
            # A re-delivery of the first notification would come with the group's first fetch.
            with contextlib.suppress(TimeoutError):
                await receiver.wait_for(lambda requests: len(requests) > 2, timeout=2.0)
            metrics = await scrape(base_url)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    records = await alert_records(kafka)

    jobs_key = of(records_before, JOBS)[0].dedup_key
    ventures_key = of(records_before, VENTURES)[0].dedup_key
    assert _episodes(records_before) == {
        JOBS: [("pending", jobs_key, 0), ("firing", jobs_key, 0)],
        VENTURES: [("pending", ventures_key, 0)],
    }
    assert recovered == before_stop
    assert _episodes(records) == {
        JOBS: [("pending", jobs_key, 0), ("firing", jobs_key, 0)],
        VENTURES: [("pending", ventures_key, 0), ("firing", ventures_key, 0)],
    }
    ventures_firing = of(records, VENTURES)[-1]
    assert ventures_firing.since == T1
    assert ventures_firing.started_at == of(records, VENTURES)[0].at
    assert _notified(receiver.requests) == [
        (JOBS, "firing", jobs_key),
        (VENTURES, "firing", ventures_key),
    ]
    assert nonzero(metrics, TRANSITIONS) == {f"{BEHIND}/firing": 1}
    assert nonzero(metrics, ACTIVE) == {
        f"{BEHIND}/critical/firing": 1,
        f"{BEHIND}/warning/firing": 1,
    }
    assert series(metrics, SENT, receiver="hook") == 1


# ---------------------------------------------------------------------------------------------
# 7. The pipeline alert, from the DLQ and canonical topics as ingest writes them.


async def _write_records(kafka: KafkaSettings, topic: TopicSpec, count: int) -> None:
    """``count`` records on ``topic``; the alerts service only counts them, by timestamp."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        name = kafka.topic_name(topic)
        sent = [await producer.send(name, b"{}", key=f"k{i}".encode()) for i in range(count)]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def test_pipeline_alert_fires_on_the_dlq_share_and_resolves_when_it_falls(
    broker: RealBroker, tmp_path: Path
) -> None:
    """With every indicator on target, 12 records on the canonical topic and 8 on the DLQ
    (8 of 20 = 40%, over the 5% limit, with the 20 messages the rule needs) fire
    RoadmapPipelineRejecting at once (``for: 0s``; it runs on the wall clock), labelled
    indicator=ingest_dlq_ratio, owner platform, with the figures in words. 300 more canonical
    records bring the share to 8 of 320 = 2.5%, under the limit: it resolves."""
    kafka = _kafka(broker)
    await ensure_topics(kafka, [CANONICAL_EVENTS, DEAD_LETTERS])
    await _start_with(kafka, on_target(T0))
    alerts_file = write_alerts_file(
        tmp_path / "alerts.yaml",
        receivers=[{"name": "console", "kind": "console"}],
        per_alert={"RoadmapPipelineRejecting": {"for": "0s", "keep_firing_for": "0s"}},
        pipeline={"dlq_ratio_limit": 0.05, "window": "10m", "min_messages": 20},
    )
    app = create_app(_settings(kafka, alerts_file))
    async with running_app(app) as base_url:
        await _write_records(kafka, CANONICAL_EVENTS, 12)
        await _write_records(kafka, DEAD_LETTERS, 8)
        await until_states(base_url, {"ingest_dlq_ratio": "firing"}, timeout=TIMEOUT)
        firing = await scrape(base_url)
        await _write_records(kafka, CANONICAL_EVENTS, 300)
        await until_states(base_url, {"ingest_dlq_ratio": "resolved"}, timeout=TIMEOUT)
        resolved = await scrape(base_url)
    records = of(await alert_records(kafka), "ingest_dlq_ratio")
    print(f"\npipeline: {[(r.state.value, r.annotations['actual']) for r in records]}")
    assert [r.state for r in records] == [AlertState.FIRING, AlertState.RESOLVED]
    assert records[0].labels == {
        "alertname": "RoadmapPipelineRejecting",
        "indicator": "ingest_dlq_ratio",
        "severity": "warning",
        "owner": "platform",
        "roadmap": ROADMAP_ID,
    }
    assert (
        records[0]
        .annotations["description"]
        .startswith(
            "Ingest sent 8 of 20 messages (40.0%) to the DLQ in the last 10 minutes; "
            "the limit is 5.0%."
        )
    )
    assert Decimal(records[0].annotations["actual"]) == Decimal("0.4")
    assert series(firing, "roadmap_alerts_pipeline_dlq_ratio") == 0.4
    assert series(resolved, "roadmap_alerts_pipeline_dlq_ratio") == 8 / 320
