"""Hand-written roadmap events for tests, and a way to fill the canonical topic directly.

``shipment``, ``milestone`` and ``hiring`` build one valid upstream event each, with every field
a test cares about spelled out, so the numbers a test expects can be worked out by hand. Each
returns an ``Upstream`` (see ``tests.support.streams``): publish it to the upstream topics for
ingest, or put its canonical form straight on the canonical topic with ``publish_canonical``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from contracts.codec import Accepted, decode_event
from contracts.events import EventType
from contracts.keys import partition_key
from contracts.topics import CANONICAL_EVENTS
from services.common.config import KafkaSettings
from services.common.publishing import BatchPublisher, OutboundRecord
from tests.support.streams import Upstream, accepted

Amount = int | str | float


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _event(
    event_type: EventType, event_id: str, occurred: datetime, source: str, data: dict[str, Any]
) -> Upstream:
    body = {
        "event_id": event_id,
        "type": event_type.value,
        "schema_version": 1,
        "occurred_at": _iso(occurred),
        "source": source,
        "data": data,
    }
    return accepted(event_type, json.dumps(body).encode(), event_id)


def shipment(
    event_id: str,
    shipment_id: str,
    *,
    occurred: datetime,
    route: tuple[str, str],
    mode: str,
    commodity: str,
    tonnes: Amount,
    shipped_on: date,
    value_usd: Amount | None = None,
) -> Upstream:
    """A ``trade.shipment``; ``value_usd=None`` leaves the optional field out."""
    data: dict[str, Any] = {
        "shipment_id": shipment_id,
        "origin": route[0],
        "destination": route[1],
        "mode": mode,
        "commodity": commodity,
        "tonnes": tonnes,
        "shipped_on": shipped_on.isoformat(),
    }
    if value_usd is not None:
        data["value_usd"] = value_usd
    return _event(EventType.TRADE_SHIPMENT, event_id, occurred, "customs", data)


def milestone(
    event_id: str,
    project_id: str,
    *,
    occurred: datetime,
    stage: str,
    sector: str,
    joint_venture: bool,
    investment_usd: Amount,
    reached_on: date,
    planned_jobs: int = 100,
) -> Upstream:
    """A ``project.milestone``: ``project_id`` reaching ``stage``."""
    data = {
        "project_id": project_id,
        "name": f"Project {project_id}",
        "sector": sector,
        "joint_venture": joint_venture,
        "investment_usd": investment_usd,
        "stage": stage,
        "planned_jobs": planned_jobs,
        "reached_on": reached_on.isoformat(),
    }
    return _event(EventType.PROJECT_MILESTONE, event_id, occurred, "project-office", data)


def hiring(
    event_id: str, project_id: str, period: str, jobs_created: int, *, occurred: datetime
) -> Upstream:
    """A ``hiring.report``: net jobs at ``project_id`` in month ``period`` (``YYYY-MM``)."""
    data = {
        "project_id": project_id,
        "period": period,
        "jobs_created": jobs_created,
        "reported_on": occurred.date().isoformat(),
    }
    return _event(EventType.HIRING_REPORT, event_id, occurred, "employment-agency", data)


def canonical_record(kafka: KafkaSettings, message: Upstream) -> OutboundRecord:
    """The record ingest publishes for ``message``: canonical bytes, natural key, and the
    entity's partition key (a project's milestones and hiring reports together)."""
    assert message.value is not None
    assert message.canonical_value is not None
    result = decode_event(message.value, expected_type=message.topic_type)
    assert isinstance(result, Accepted), result
    return OutboundRecord(
        kafka.topic_name(CANONICAL_EVENTS),
        message.canonical_key,
        message.canonical_value,
        partition_key=partition_key(result.event),
    )


async def publish_canonical(
    kafka: KafkaSettings, messages: Iterable[Upstream], *, chunk: int = 5000
) -> int:
    """Put the canonical form of ``messages`` on the canonical topic, in order, with ingest's own
    publisher and partitioning (no ingest process needed); return how many were published."""
    records = [canonical_record(kafka, m) for m in messages]
    publisher = BatchPublisher(kafka, service="test-canonical-feed")
    await publisher.start()
    try:
        for start in range(0, len(records), chunk):
            await publisher.publish(records[start : start + chunk])
    finally:
        await publisher.stop()
    return len(records)
