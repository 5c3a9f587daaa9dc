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
