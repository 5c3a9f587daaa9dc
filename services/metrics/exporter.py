"""The scorecard and domain breakdowns, computed from the fold's state at scrape time.

A custom collector rather than gauges set on every event: the expected value moves with time
even when no event arrives, and reading the state when Prometheus asks costs one pass over the
per-day sums instead of an update per event. Series are bounded by the roadmap file and the
configured label lists.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from contracts.events import EventType
from contracts.roadmap.projection import Outlook
from services.metrics.entities import MICRO
from services.metrics.fold import PartitionState, jobs_by_sector
from services.metrics.plan import RoadmapPlan
from services.metrics.readings import Reading, read

EvaluationTime = Callable[[Mapping[int, PartitionState]], datetime]


def _midnight(day: date) -> float:
    return datetime.combine(day, time.min, tzinfo=UTC).timestamp()


def _deadline_ts(plan: RoadmapPlan, indicator_id: str) -> float:
    return _midnight(plan.indicator(indicator_id).indicator.deadline + timedelta(days=1))


def family(
    name: str, documentation: str, labels: tuple[str, ...] = ("indicator",)
) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def readings(
    plan: RoadmapPlan, states: Mapping[int, PartitionState], at: datetime
) -> list[Reading]:
    return [read(indicator, states, at) for indicator in plan.indicators]


class RoadmapCollector(Collector):
    """Yields ``roadmap_indicator_*``, freight, projects and jobs series from the live state."""

    def __init__(
        self,
        plan: RoadmapPlan,
        states: Mapping[int, PartitionState],
        evaluation_time: EvaluationTime,
    ) -> None:
        self._plan = plan
        self._states = states
        self._evaluation_time = evaluation_time

    def collect(self) -> Iterator[Metric]:
        states = dict(self._states)  # the consumer may add or drop partitions meanwhile
        at = self._evaluation_time(states)
        yield from self._scorecard(readings(self._plan, states, at), at)
        yield from self._breakdowns(states)

    def _scorecard(self, current: list[Reading], at: datetime) -> Iterator[Metric]:
        value = family("roadmap_indicator_value", "Actual value now (absent while undefined).")
        target = family("roadmap_indicator_target", "Target at the deadline.")
        expected = family(
            "roadmap_indicator_expected", "Where the trajectory says it should be now."
        )
        baseline = family("roadmap_indicator_baseline", "Value at the start.")
        progress = family("roadmap_indicator_progress_ratio", "Value divided by target.")
        tolerance = family(
            "roadmap_indicator_tolerance_ratio", "Shortfall allowed before an alert."
        )
        deadline = family(
            "roadmap_indicator_deadline_timestamp_seconds", "End of the deadline day."
        )
        start = family("roadmap_indicator_start_timestamp_seconds", "Start of the first day.")
        last = family(
            "roadmap_indicator_last_event_timestamp_seconds",
            "occurred_at of the newest event that changed the indicator's data.",
        )
        projected = family(
            "roadmap_indicator_projected",
            "The value at the deadline at the pace of the last pace_window days (the projected "
            "flows: sums and counts of shipments or hiring reports).",
        )
        completion = family(
            "roadmap_indicator_projected_completion_timestamp_seconds",
            "The day the target is reached at that pace, 00:00 UTC (absent while the pace is "
            "zero or negative).",
        )
        outlook = family(
            "roadmap_indicator_outlook",
            "The indicator's outlook now, 1 for the current state and 0 for the others: "
            "on_track, at_risk (projected short of the target less its tolerance) or behind "
            "(its trajectory).",
            ("indicator", "outlook"),
        )
        components = family(
            "roadmap_indicator_component",
            "Additive parts of the value (sum across replicas, then take ratios).",
            ("indicator", "component"),
        )
        info = InfoMetricFamily(
            "roadmap_indicator",
            "What each indicator is.",
            labels=["indicator", "roadmap", "title", "unit", "severity", "owner", "kind"],
        )
        for reading in current:
            indicator = reading.indicator
            labels = [indicator.id]
            if reading.value is not None:
                value.add_metric(labels, float(reading.value))
            if reading.progress is not None:
                progress.add_metric(labels, float(reading.progress))
            target.add_metric(labels, float(indicator.target))
            expected.add_metric(labels, float(reading.expected))
            baseline.add_metric(labels, float(indicator.baseline))
            tolerance.add_metric(labels, float(indicator.tolerance))
            deadline.add_metric(labels, _deadline_ts(self._plan, indicator.id))
            start.add_metric(
                labels, datetime.combine(indicator.start, time.min, tzinfo=UTC).timestamp()
            )
            if reading.last_event_at is not None:
                last.add_metric(labels, reading.last_event_at.timestamp())
            if reading.outlook is not None:  # every state, 1 for the current (no series churn)
                for state in Outlook:
                    outlook.add_metric([indicator.id, state.value], int(state is reading.outlook))
            if reading.projection is not None:
                projected.add_metric(labels, float(reading.projection.projected))
                if reading.projection.reached_on is not None:
                    completion.add_metric(labels, _midnight(reading.projection.reached_on))
            for name, amount in reading.components.items():
                components.add_metric([indicator.id, name], float(amount))
            info.add_metric(
                [
                    indicator.id,
                    self._plan.roadmap,
                    indicator.title,
                    indicator.unit,
                    indicator.severity.value,
                    indicator.owner,
                    self._plan.indicator(indicator.id).kind,
                ],
                {},
            )
        evaluated = GaugeMetricFamily(
            "roadmap_evaluation_timestamp_seconds",
            "The time indicators are evaluated at (the wall clock, or the newest event).",
        )
        evaluated.add_metric([], at.timestamp())
        yield from (value, target, expected, baseline, progress, tolerance, deadline, start)
        yield from (last, projected, completion, outlook, components, info, evaluated)

    def _breakdowns(self, states: Mapping[int, PartitionState]) -> Iterator[Metric]:
        freight: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        stages: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        sectors: dict[str, int] = defaultdict(int)
        entities: dict[EventType, int] = defaultdict(int)
        for state in states.values():
            for key, row in state.freight.items():
                total = freight[key]
                for i, amount in enumerate(row):
                    total[i] += amount
            for stage, row in state.projects_by_stage.items():
                stages[stage][0] += row[0]
                stages[stage][1] += row[1]
            for sector, net in jobs_by_sector(state).items():
                sectors[sector] += net
            for event_type, records in state.entities.items():
                entities[event_type] += len(records)
        labels = ["direction", "mode", "commodity"]
        shipments = GaugeMetricFamily(
            "roadmap_freight_shipments", "Shipments (latest version of each).", labels=labels
        )
        tonnes = GaugeMetricFamily("roadmap_freight_tonnes", "Tonnes shipped.", labels=labels)
        worth = GaugeMetricFamily(
            "roadmap_freight_value_usd", "Declared value of shipments.", labels=labels
        )
        for key, (count, mass, usd) in sorted(freight.items()):
            labels_ = [str(part) for part in key]  # codes may be StrEnum members
            shipments.add_metric(labels_, count)
            tonnes.add_metric(labels_, mass / MICRO)
            worth.add_metric(labels_, usd / MICRO)
        projects = GaugeMetricFamily(
            "roadmap_projects", "Projects by their latest stage.", labels=["stage"]
        )
        investment = GaugeMetricFamily(
            "roadmap_projects_investment_usd", "Investment by latest stage.", labels=["stage"]
        )
        for stage, (count, money) in sorted(stages.items()):
            projects.add_metric([str(stage)], count)
            investment.add_metric([str(stage)], money / MICRO)
        jobs = GaugeMetricFamily(
            "roadmap_jobs", "Net jobs created, by the project's sector.", labels=["sector"]
        )
        for sector, amount in sorted(sectors.items()):
            jobs.add_metric([sector], amount / MICRO)
        held = GaugeMetricFamily(
            "roadmap_metrics_entities", "Entities held (latest version per key).", labels=["type"]
        )
        for event_type in EventType:
            held.add_metric([event_type.value], entities[event_type])
        yield from (shipments, tonnes, worth, projects, investment, jobs, held)
