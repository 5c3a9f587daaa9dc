"""Values of the topics downstream of ingest: DLQ records, KPI snapshots, alert transitions."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool, StrictInt, StrictStr

from contracts.codec import FieldError, RejectReason
from contracts.events import Contract
from contracts.fields import Timestamp

CANONICAL_HEADER_PUBLISHER = "x-roadmap-publisher"
"""On each canonical event: who sent it; an HTTP publisher's name, or ``kafka`` (on Kafka the
broker's ACLs say who may write each upstream topic), or ``anonymous`` (HTTP with no
publishers file)."""
DLQ_HEADER_REASON = "x-roadmap-reason"
DLQ_HEADER_SOURCE_TOPIC = "x-roadmap-source-topic"
DLQ_HEADER_PUBLISHER = CANONICAL_HEADER_PUBLISHER
DLQ_HEADER_SOURCE_PARTITION = "x-roadmap-source-partition"
DLQ_HEADER_SOURCE_OFFSET = "x-roadmap-source-offset"
DLQ_MAX_ORIGINAL_BYTES = 512 * 1024
"""Original bytes kept in a DLQ record; beyond this they are cut, so the record always fits
under a broker's default 1 MB message limit even after base64."""
DLQ_MAX_KEY_BYTES = 1024
"""A DLQ message is keyed by the original key; a longer key is replaced by ``sha256:<hex>`` of
it (same key, same digest, same partition), so key and value together stay under 1 MB."""
DLQ_MAX_HEADER_BYTES = 16 * 1024
"""Original headers kept in a DLQ record, in order, up to this many bytes of keys and values."""


class DlqHeader(Contract):
    """One header of the rejected message (kept as sent: no whitespace is trimmed)."""

    model_config = ConfigDict(str_strip_whitespace=False)

    key: StrictStr = Field(description="The key; bytes that were not UTF-8 are written as \\xNN")
    value_base64: StrictStr | None = Field(description="The value, base64; None for a null value")


class DlqRecord(Contract):
    """A message ingest could not accept, with why, where it came from, and its original bytes."""

    reason: RejectReason
    detail: StrictStr
    errors: list[FieldError] = Field(default_factory=list)
    source_topic: StrictStr
    source_partition: StrictInt | None = Field(default=None, description="None for HTTP")
    source_offset: StrictInt | None = Field(default=None, description="None for HTTP")
    rejected_at: Timestamp
    original_size: StrictInt = Field(ge=0, description="Size of the message as received, in bytes")
    original_truncated: StrictBool = Field(
        default=False, description="True when only the first DLQ_MAX_ORIGINAL_BYTES are kept"
    )
    original_base64: StrictStr = Field(description="The message as received, base64")
    original_headers: list[DlqHeader] = Field(
        default_factory=list, description="The message's Kafka headers, in order"
    )
    original_headers_truncated: StrictBool = Field(
        default=False, description="True when headers beyond DLQ_MAX_HEADER_BYTES were left out"
    )


class KpiSnapshot(Contract):
    """One indicator at an evaluation time, from the canonical partitions one replica owns.

    ``components`` are the additive parts (sums, counts) over ``partitions``, and
    ``partition_components`` the same per partition, so snapshots from several replicas can be
    added up exactly (ratios are taken after adding). ``value`` is computed from ``components``;
    it is the whole indicator when ``partitions`` covers all ``partition_count`` partitions.
    """

    roadmap: StrictStr
    indicator: StrictStr
    value: Decimal | None = Field(description="None when undefined, e.g. a ratio over zero")
    expected: Decimal
    target: Decimal
    components: dict[str, Decimal] = Field(
        default_factory=dict, description="Additive parts (sums, counts) the value is computed from"
    )
    partitions: list[StrictInt] = Field(default_factory=list)
    partition_count: StrictInt = Field(ge=0, default=0)
    partition_components: dict[int, dict[str, Decimal]] = Field(default_factory=dict)
    evaluated_at: Timestamp
    last_event_at: Timestamp | None = None
    projected: Decimal | None = Field(
        default=None,
        description=(
            "The value at the deadline at the pace of the indicator's last pace_window days, "
            "over these partitions (None for ratios and growth, which are not projected); the "
            "pace's additive part is the 'recent' component"
        ),
    )
    projected_completion_on: date | None = Field(
        default=None,
        description="The day the target is reached at that pace (None: never at this pace)",
    )


class AlertState(StrEnum):
    PENDING = "pending"
    """The condition holds but not yet for the alert's ``for``; not sent to receivers."""
    FIRING = "firing"
    """Sent to receivers; re-sent on the repeat interval while the condition holds."""
    RESOLVED = "resolved"
    """Was firing and the condition has cleared; sent to receivers."""
    INACTIVE = "inactive"
    """Was pending and the condition cleared before ``for`` passed; not sent."""


NOTIFIED_STATES = frozenset({AlertState.FIRING, AlertState.RESOLVED})
"""The states whose records are delivered to receivers."""


class AlertName(StrEnum):
    TARGET_BEHIND = "RoadmapTargetBehind"
    TARGET_AT_RISK = "RoadmapTargetAtRisk"
    DEADLINE_MISSED = "RoadmapDeadlineMissed"
    INDICATOR_STALE = "RoadmapIndicatorStale"
    PIPELINE_REJECTING = "RoadmapPipelineRejecting"
    PIPELINE_STALLED = "RoadmapPipelineStalled"


IDENTITY_LABELS = ("alertname", "indicator", "severity", "owner", "roadmap")
"""The labels that make an alert's identity (DESIGN section 6)."""


class AlertTransition(Contract):
    """An alert entering a state, or a firing alert being re-sent (``repeat`` > 0).

    Identity is ``labels``; figures and text go in ``annotations``. ``since`` is when the
    condition began, on the roadmap clock (the event clock in replays); ``started_at`` and
    ``at`` are wall-clock times of the episode's first record and of this one. ``dedup_key`` is
    the same for every record of one episode (pending, firing, its repeats, resolved), so a
    receiver can recognise a repeat or a re-delivery.
    """

    alertname: AlertName
    state: AlertState
    labels: dict[str, str]
    annotations: dict[str, str]
    since: Timestamp
    started_at: Timestamp
    at: Timestamp
    repeat: StrictInt = Field(default=0, ge=0, description="0 when the state is entered")
    previous_at: Timestamp | None = Field(
        default=None, description="``at`` of the episode's previous firing record, if any"
    )
    dedup_key: Annotated[StrictStr, Field(min_length=1, max_length=200)]
