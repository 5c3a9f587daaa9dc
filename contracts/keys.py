"""Natural keys: which events describe the same thing, so that a later one corrects an earlier one.

A canonical event's Kafka key is its natural key and its version (``canonical_key``); its
partition comes from the entity (``partition_key``), so every version of one entity lands in one
partition, in order. The version is in the key because Kafka's compaction keeps the last record
per key by *offset*, while the fold keeps the latest version by ``occurred_at``: with the natural
key alone, a stale version arriving after a newer one (a late correction, a re-sent milestone,
two producers racing) would be all that compaction leaves. With one key per version, compaction
only drops a version published twice, and replaying what it leaves folds to the same numbers.
"""

from __future__ import annotations

from contracts.events import HiringReportEvent, ProjectMilestoneEvent, TradeShipmentEvent

AnyEvent = TradeShipmentEvent | ProjectMilestoneEvent | HiringReportEvent
NaturalKey = tuple[str, ...]


def natural_key(event: AnyEvent) -> NaturalKey:
    """The event type followed by the fields that identify the entity the event describes."""
    match event:
        case TradeShipmentEvent():
            return (event.type, event.data.shipment_id)
        case ProjectMilestoneEvent():
            return (event.type, event.data.project_id)
        case HiringReportEvent():
            return (event.type, event.data.project_id, event.data.period)


def message_key(event: AnyEvent) -> bytes:
    """The natural key joined by ``/`` (ids never contain ``/``), e.g. ``trade.shipment/S-1``."""
    return "/".join(natural_key(event)).encode("utf-8")


VERSION_SEPARATOR = b"@"


def canonical_key(event: AnyEvent) -> bytes:
    """The Kafka key of ``event`` on the canonical topic: the natural key, ``@``, then the
    version the fold orders by, ``occurred_at`` (UTC, microseconds) and ``event_id``: e.g.
    ``trade.shipment/S-1@2025-03-14T10:00:00.000000Z/kz-customs-1`` (ids never contain ``@``)."""
    when = event.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return message_key(event) + VERSION_SEPARATOR + f"{when}/{event.event_id}".encode()


def entity_of(key: bytes) -> bytes:
    """The natural-key part of a canonical key (``message_key`` of the event)."""
    return key.split(VERSION_SEPARATOR, 1)[0]


def partition_key(event: AnyEvent) -> bytes:
    """What the canonical topic is partitioned by: the entity the event belongs to.

    A project's milestones and its hiring reports share ``project/<id>``, so one partition holds
    everything about a project and a consumer owning that partition can join them (jobs by
    sector). A shipment is its own entity. Every version of a natural key has the same partition
    key, so versions stay in one partition, in order.
    """
    match event:
        case TradeShipmentEvent():
            return message_key(event)
        case ProjectMilestoneEvent() | HiringReportEvent():
            return f"project/{event.data.project_id}".encode()


def alert_key(labels: dict[str, str]) -> bytes:
    """The Kafka key of an alert's records: ``roadmap/alertname/indicator``.

    Every record of one alert (all its episodes) lands in one partition, in order, so the latest
    record per key is the alert's current state.
    """
    return f"{labels['roadmap']}/{labels['alertname']}/{labels['indicator']}".encode()
