"""What the alerts service's connected tests stand on: KPI snapshots, alerts files, scraping.

The alerts service reads KPI snapshots (normally from metrics); here a test publishes them
itself, one per indicator over every partition of the canonical topic, at evaluation times it
chooses (the service runs on ``ROADMAP_CLOCK=event``, so the newest ``evaluated_at`` is the
roadmap's "now"). ``on_target`` puts every indicator of ``deploy/roadmap.yaml`` exactly at its
target with fresh data, so nothing alerts unless a test moves an indicator behind.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from contracts.keys import alert_key
from contracts.records import AlertTransition, KpiSnapshot
from contracts.roadmap.loader import load_roadmap
from contracts.roadmap.trajectory import TargetTrajectory
from contracts.topics import ALERT_TRANSITIONS, KPI_SNAPSHOTS
from services.common.config import KafkaSettings
from services.metrics.snapshots import snapshot_key
from tests.support.kafka import read_topic
from tests.support.services import REPO
from tests.support.waiting import until

T = TypeVar("T")

ROADMAP_FILE = REPO / "deploy" / "roadmap.yaml"
ROADMAP = load_roadmap(ROADMAP_FILE)
ROADMAP_ID = ROADMAP.roadmap
INDICATORS = {indicator.id: indicator for indicator in ROADMAP.indicators}
PARTITIONS = 3

AT_TARGET: dict[str, dict[str, int]] = {
    # Each indicator's components when it sits exactly at its target: never behind (a share
    # of 102/1,000 is 0.102, a growth of 119 over 100 is 0.19).
    "jobs_created": {"sum": 1800},
    "industrial_projects": {"count": 14},
    "industrial_projects_value_usd": {"sum": 277_500_000},
    "joint_ventures_operational": {"count": 11},
    "road_freight_tonnes": {"sum": 3_004_000},
    "road_freight_growth_ratio": {"current": 119, "previous": 100},
    "flour_export_share_ratio": {"numerator": 102, "denominator": 1000},
}
assert set(AT_TARGET) == set(INDICATORS), "AT_TARGET must cover deploy/roadmap.yaml"


def _split(amount: int) -> list[Decimal]:
    """``amount`` over the three partitions, as a metrics replica set would report it."""
    third = amount // PARTITIONS
    return [Decimal(amount - (PARTITIONS - 1) * third)] + [Decimal(third)] * (PARTITIONS - 1)


def snapshot(indicator: str, components: Mapping[str, int], at: datetime) -> KpiSnapshot:
    """One indicator over all partitions, evaluated (and last fed an event) at ``at``."""
    per_partition: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for name, amount in components.items():
        for partition, part in enumerate(_split(amount)):
            per_partition[partition][name] = part
    totals = {name: Decimal(amount) for name, amount in components.items()}
    spec = INDICATORS[indicator]
    if len(totals) == 1:
        value: Decimal | None = next(iter(totals.values()))
    else:
        top, bottom = totals.values()
        value = top / bottom if "numerator" in totals else top / bottom - 1
    return KpiSnapshot(
        roadmap=ROADMAP_ID,
        indicator=indicator,
        value=value,
        expected=TargetTrajectory(spec).expected(at),
        target=spec.target,
        components=totals,
        partitions=list(range(PARTITIONS)),
        partition_count=PARTITIONS,
        partition_components=dict(per_partition),
        evaluated_at=at,
        last_event_at=at,
    )


def on_target(at: datetime, **behind: Mapping[str, int]) -> list[KpiSnapshot]:
    """A snapshot of every indicator at ``at``: at target, except those given in ``behind``."""
    return [snapshot(i, behind.get(i, AT_TARGET[i]), at) for i in INDICATORS]


async def publish_snapshots(kafka: KafkaSettings, snapshots: Sequence[KpiSnapshot]) -> None:
    """Put ``snapshots`` on the KPI topic (acks=all), keyed as metrics keys them."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all")
    await producer.start()
    try:
        topic = kafka.topic_name(KPI_SNAPSHOTS)
        futures = [
            await producer.send(topic, s.model_dump_json().encode(), key=snapshot_key(s))
            for s in snapshots
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def write_alerts_file(
    path: Path,
    *,
    receivers: list[dict[str, Any]],
    routes: list[dict[str, Any]] | None = None,
    for_: str = "1d",
    repeat_interval: str = "1h",
    per_alert: dict[str, dict[str, str]] | None = None,
    pipeline: dict[str, Any] | None = None,
) -> Path:
    """An alerts file with short timings: ``for_`` on the roadmap clock, resolve at once,
    evaluate every second, retry every 0.5-1 s for up to a minute."""
    document = {
        "version": 1,
        "lifecycle": {
            "defaults": {"for": for_, "keep_firing_for": "0s"},
            "per_alert": per_alert or {},
            "repeat_interval": repeat_interval,
            "evaluation_interval": "1s",
        },
        **({"pipeline": pipeline} if pipeline else {}),
        "retry": {
            "initial_backoff": "1s",
            "max_backoff": "1s",
            "give_up_after": "60s",
            "timeout": "5s",
        },
        "receivers": receivers,
        "routes": routes or [{"receivers": [r["name"] for r in receivers]}],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


# ---------------------------------------------------------------------------------------------
# Reading what the service did.


async def alert_records(kafka: KafkaSettings) -> list[AlertTransition]:
    """Every record on the alerts topic, per partition in offset order (so in order per alert);
    each one's Kafka key is checked to be ``alert_key`` of its labels."""
    records = []
    for raw in await read_topic(kafka.bootstrap_servers, kafka.topic_name(ALERT_TRANSITIONS)):
        record = AlertTransition.model_validate_json(raw.value)
        assert raw.key == alert_key(record.labels), (raw.key, record.labels)
        records.append(record)
    return records


def of(records: Sequence[AlertTransition], indicator: str) -> list[AlertTransition]:
    return [r for r in records if r.labels["indicator"] == indicator]


Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]
"""sample name -> sorted labels -> value."""


async def scrape(base_url: str) -> Samples:
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        response = await client.get("/metrics")
        response.raise_for_status()
    found: Samples = defaultdict(dict)
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return found


def series(samples: Samples, name: str, **labels: str) -> float:
    """The one series of ``name`` with exactly ``labels``; 0 when absent."""
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def nonzero(samples: Samples, name: str) -> dict[str, float]:
    """``name``'s non-zero series, keyed by their label values joined with ``/``."""
    return {
        "/".join(value for _, value in key): value
        for key, value in samples.get(name, {}).items()
        if value
    }


async def alerts_view(base_url: str) -> list[AlertTransition]:
    """What ``GET /v1/alerts`` lists."""
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        response = await client.get("/v1/alerts")
        response.raise_for_status()
    return [AlertTransition.model_validate(a) for a in response.json()["alerts"]]


async def until_states(
    base_url: str, wanted: Mapping[str, str], *, timeout: float = 60.0
) -> list[AlertTransition]:
    """Wait until /v1/alerts shows each ``indicator: state`` of ``wanted`` (and no other
    alert); return the listed records."""

    def matches(listed: list[AlertTransition]) -> bool:
        return {r.labels["indicator"]: r.state.value for r in listed} == dict(wanted)

    return await until(
        f"alerts {dict(wanted)}", lambda: alerts_view(base_url), matches, timeout=timeout
    )
