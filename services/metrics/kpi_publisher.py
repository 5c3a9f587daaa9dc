"""Publishing KPI snapshots: after a batch changed something, and every so often regardless.

Two callers can ask at once, the handler after a batch and the ticker, so one publication runs
at a time: the second waits, then finds nothing due (the policy knows what just went out)
instead of publishing the same snapshots again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from services.common.periodic import Periodic
from services.common.publishing import OutboundRecord, PublishError, RecordPublisher
from services.metrics.exporter import readings
from services.metrics.fold import PartitionState
from services.metrics.metrics import PipelineMetrics
from services.metrics.plan import RoadmapPlan
from services.metrics.snapshots import SnapshotPolicy, snapshot_key, snapshot_of

log = logging.getLogger(__name__)

CHANGE_COALESCE_S = 1.0
"""Snapshots of changed indicators go out at most this often (a burst is one snapshot)."""


class FoldedState(Protocol):
    """What the publisher reads of the consumer: its partitions' states once replayed."""

    @property
    def states(self) -> Mapping[int, PartitionState]: ...
    @property
    def caught_up(self) -> bool: ...
    @property
    def partition_count(self) -> int: ...


class KpiPublisher:
    """Publishes the snapshots the ``SnapshotPolicy`` says are due, one publication at a time."""

    def __init__(
        self,
        plan: RoadmapPlan,
        source: FoldedState,
        publisher: RecordPublisher,
        metrics: PipelineMetrics,
        *,
        topic: str,
        interval_s: float,
        evaluation_time: Callable[[Mapping[int, PartitionState]], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._plan = plan
        self._source = source
        self._publisher = publisher
        self._metrics = metrics
        self._topic = topic
        self._policy = SnapshotPolicy(interval_s)
        self._evaluation_time = evaluation_time
        self._monotonic = monotonic
        self._one_at_a_time = asyncio.Lock()
        self._last_change_publish = 0.0
        self.ticker = Periodic(
            "metrics KPI snapshots", min(interval_s, 5.0), lambda: self.publish(changed_only=False)
        )

    async def changed(self) -> int:
        """After a batch: publish what changed, at most every ``CHANGE_COALESCE_S``."""
        return await self.publish(changed_only=True)

    async def publish(self, *, changed_only: bool) -> int:
        """Publish the snapshots due now; how many went out (0 also when the broker refused)."""
        async with self._one_at_a_time:
            return await self._publish(changed_only=changed_only)

    async def _publish(self, *, changed_only: bool) -> int:
        source = self._source
        if not source.caught_up:
            return 0  # a partial replay is not a state worth announcing
        states = dict(source.states)
        owned = sorted(states)
        now_s = self._monotonic()
        if changed_only and now_s - self._last_change_publish < CHANGE_COALESCE_S:
            return 0
        current = readings(self._plan, states, self._evaluation_time(states))
        due = self._policy.due(current, now_s, owned)
        if not due:
            return 0
        snapshots = [
            snapshot_of(
                r,
                roadmap=self._plan.roadmap,
                partitions=owned,
                partition_count=source.partition_count,
            )
            for r in due
        ]
        records = [
            OutboundRecord(self._topic, snapshot_key(s), s.model_dump_json().encode())
            for s in snapshots
        ]
        try:
            await self._publisher.publish(records)
        except PublishError as exc:
            self._metrics.snapshot_failures.inc()
            log.warning("KPI snapshots not published", extra={"error": str(exc)})
            return 0
        self._policy.published(due, now_s, owned)
        self._last_change_publish = now_s
        self._metrics.snapshots.inc(len(records))
        return len(records)
