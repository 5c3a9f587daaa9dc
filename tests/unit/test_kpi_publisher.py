"""Publishing KPI snapshots: one publication at a time, nothing remembered when the broker
refuses, nothing announced before the replay is done."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from prometheus_client import CollectorRegistry

from contracts.records import KpiSnapshot
from services.common.publishing import BatchPublisher, OutboundRecord, PublishError
from services.metrics.fold import PartitionState
from services.metrics.kpi_publisher import KpiPublisher
from services.metrics.metrics import PipelineMetrics
from tests.unit.test_metrics_builders import DEFAULT_IDS, LABELS, hiring, state_of
from tests.unit.test_metrics_properties import AT, PLAN


@dataclass
class Folded:
    states: Mapping[int, PartitionState]
    caught_up: bool = True
    partition_count: int = 2


@dataclass
class SlowPublisher:
    """Takes a moment per request, like a broker round trip; ``refuse`` makes it fail."""

    refuse: bool = False
    batches: list[list[OutboundRecord]] = field(default_factory=list)

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        await asyncio.sleep(0.02)
        if self.refuse:
            raise PublishError("not acknowledged")
        self.batches.append(list(records))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _kpis(source: Folded, publisher: SlowPublisher, clock: Clock) -> tuple[KpiPublisher, Any]:
    metrics = PipelineMetrics(CollectorRegistry())
    kpis = KpiPublisher(
        PLAN,
        source,
        cast(BatchPublisher, publisher),
        metrics,
        topic="roadmap.kpi.v1",
        interval_s=60.0,
        evaluation_time=lambda _: AT,
        monotonic=clock,
    )
    return kpis, metrics


def _source() -> Folded:
    return Folded(
        {
            0: state_of(PLAN, [hiring("h-1", "P-1", "2025-03", 7)], LABELS),
            1: PartitionState(PLAN, LABELS),
        }
    )


async def test_two_callers_at_once_publish_the_snapshots_once() -> None:
    """The ticker and a batch's handler asking together: one batch of seven snapshots, and the
    second caller finds nothing due. Without the lock both published the same seven."""
    publisher = SlowPublisher()
    kpis, _ = _kpis(_source(), publisher, Clock())
    counts = await asyncio.gather(kpis.publish(changed_only=False), kpis.changed())
    assert sorted(counts) == [0, len(DEFAULT_IDS)]
    assert len(publisher.batches) == 1
    published = [KpiSnapshot.model_validate_json(r.value) for r in publisher.batches[0]]
    assert sorted(s.indicator for s in published) == sorted(DEFAULT_IDS)
    assert all(s.partitions == [0, 1] for s in published)


async def test_a_refused_publication_leaves_nothing_remembered() -> None:
    """The broker does not acknowledge: nothing counts as published, so the next try sends
    every snapshot again."""
    publisher = SlowPublisher(refuse=True)
    kpis, metrics = _kpis(_source(), publisher, Clock())
    assert await kpis.publish(changed_only=False) == 0
    assert metrics.snapshot_failures._value.get() == 1
    publisher.refuse = False
    assert await kpis.publish(changed_only=False) == len(DEFAULT_IDS)


async def test_nothing_is_announced_before_the_replay_is_done_and_changes_are_coalesced() -> None:
    source, publisher, clock = _source(), SlowPublisher(), Clock()
    source.caught_up = False
    kpis, _ = _kpis(source, publisher, clock)
    assert await kpis.publish(changed_only=False) == 0
    source.caught_up = True
    assert await kpis.changed() == len(DEFAULT_IDS)
    clock.now += 0.5
    assert await kpis.changed() == 0  # within the coalescing second, and nothing changed
    clock.now += 61
    assert await kpis.publish(changed_only=False) == len(DEFAULT_IDS)  # the interval passed
