"""Natural keys: which events describe the same thing, so that a later one corrects an earlier one.

The Kafka message key of a canonical event is derived from its natural key, so every version of
one entity lands in one partition, in order, and a compacted topic keeps the latest.
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
    """The Kafka key for ``event``: its natural key joined by ``/`` (ids never contain ``/``)."""
    return "/".join(natural_key(event)).encode("utf-8")


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
