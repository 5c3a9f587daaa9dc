"""Alert lifecycle: pending -> firing -> resolved, with repeats and damping. Pure.

``evaluate(book, conditions, now, lifecycle)`` compares what holds now with what the book
remembers and returns the records to publish; nothing changes until the caller, once the
records are acknowledged, calls ``book.settle(evaluation)``. A restart rebuilds the book by
``apply``-ing the alerts topic from the beginning: the topic is the alert state.

- A condition that starts to hold opens an episode: ``pending`` (or ``firing`` at once when its
  ``for`` is 0). The episode's ``dedup_key`` is fixed for all its records.
- Pending for ``for`` (on the condition's clock) -> ``firing``; cleared before -> ``inactive``.
- Firing: re-sent every ``repeat_interval`` on the wall clock, with current figures.
- Firing but clear: resolved only after staying clear for ``keep_firing_for`` (damping). The
  time it has been clear is not on the topic, so after a restart the wait starts again.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from contracts.alerts_file import Lifecycle
from contracts.keys import alert_key
from contracts.records import AlertName, AlertState, AlertTransition
from services.alerts.conditions import Clock, Condition

OPEN = frozenset({AlertState.PENDING, AlertState.FIRING})


class Moment(NamedTuple):
    """Now on both clocks: ``roadmap`` (wall, or event time in replays) and ``wall``."""

    roadmap: datetime
    wall: datetime

    def on(self, clock: Clock) -> datetime:
        return self.roadmap if clock == "roadmap" else self.wall


def clock_of(alertname: AlertName) -> Clock:
    """The pipeline alert is about the service now; roadmap alerts follow the roadmap clock."""
    return "wall" if alertname is AlertName.PIPELINE_REJECTING else "roadmap"


def dedup_key(key: str, since: datetime, started_at: datetime) -> str:
    """Stable for one episode of one alert; different for the next episode."""
    text = f"{key}|{since.isoformat()}|{started_at.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class AlertEntry:
    """What the book remembers of one alert: its latest record."""

    record: AlertTransition
    last_fired_at: datetime | None


class Evaluation(NamedTuple):
    records: list[AlertTransition]
    clearing: dict[str, datetime]
    """Firing alerts whose condition is clear, and since when (roadmap/wall per alert)."""


@dataclass
class AlertBook:
    entries: dict[str, AlertEntry] = field(default_factory=dict)
    clearing: dict[str, datetime] = field(default_factory=dict)

    def apply(self, record: AlertTransition) -> None:
        """Take ``record`` as the alert's latest state (recovery, and after publishing)."""
        key = alert_key(record.labels).decode()
        previous = self.entries.get(key)
        fired = previous.last_fired_at if previous else None
        if record.state is AlertState.FIRING:
            fired = record.at
        self.entries[key] = AlertEntry(record, fired)
        if record.state is not AlertState.FIRING:
            self.clearing.pop(key, None)

    def settle(self, evaluation: Evaluation) -> None:
        """Make an evaluation's outcome the book's state, once its records are published."""
        for record in evaluation.records:
            self.apply(record)
        self.clearing = dict(evaluation.clearing)

    def counts(self) -> Counter[tuple[str, str, str]]:
        """Open alerts by (alertname, severity, state)."""
        return Counter(
            (e.record.alertname.value, e.record.labels.get("severity", ""), e.record.state.value)
            for e in self.entries.values()
            if e.record.state in OPEN
        )

    def open_records(self) -> list[AlertTransition]:
        return [e.record for e in self.entries.values() if e.record.state in OPEN]


class Episode(NamedTuple):
    """One run of an alert from the moment its condition began to hold."""

    key: str
    since: datetime
    started_at: datetime


def _record(
    source: Condition | AlertTransition,
    episode: Episode,
    state: AlertState,
    at: datetime,
    *,
    repeat: int = 0,
    previous_at: datetime | None = None,
    extra: Mapping[str, str] | None = None,
) -> AlertTransition:
    """A record of ``episode`` in ``state``, with ``source``'s labels and annotations."""
    annotations = {**source.annotations, "since": episode.since.isoformat(), **(extra or {})}
    return AlertTransition(
        alertname=source.alertname,
        state=state,
        labels=dict(source.labels),
        annotations=annotations,
        since=episode.since,
        started_at=episode.started_at,
        at=at,
        repeat=repeat,
        previous_at=previous_at,
        dedup_key=dedup_key(*episode),
    )


def evaluate(
    book: AlertBook, conditions: Mapping[str, Condition], now: Moment, lifecycle: Lifecycle
) -> Evaluation:
    """The records that ``conditions`` holding at ``now`` call for, given ``book``."""
    records: list[AlertTransition] = []
    clearing: dict[str, datetime] = {}
    for key in sorted(set(conditions) | set(book.entries)):
        condition = conditions.get(key)
        entry = book.entries.get(key)
        current = entry.record if entry else None
        if current is None or current.state not in OPEN:
            if condition is None:
                continue
            fire_now = lifecycle.timing(condition.alertname).for_.total_seconds() == 0
            opened = Episode(key, now.on(condition.clock), now.wall)
            state = AlertState.FIRING if fire_now else AlertState.PENDING
            records.append(_record(condition, opened, state, now.wall))
            continue
        assert entry is not None
        clock = clock_of(current.alertname)
        timing = lifecycle.timing(current.alertname)
        episode = Episode(key, current.since, current.started_at)
        if current.state is AlertState.PENDING:
            if condition is None:
                records.append(_record(current, episode, AlertState.INACTIVE, now.wall))
            elif now.on(clock) - current.since >= timing.for_:
                records.append(_record(condition, episode, AlertState.FIRING, now.wall))
            continue
        # firing
        if condition is None:
            cleared_at = book.clearing.get(key, now.on(clock))
            if now.on(clock) - cleared_at >= timing.keep_firing_for:
                resolved_at = {"resolved_at": now.on(clock).isoformat()}
                records.append(
                    _record(current, episode, AlertState.RESOLVED, now.wall, extra=resolved_at)
                )
                continue
            clearing[key] = cleared_at
        fired = entry.last_fired_at or current.at
        if now.wall - fired >= lifecycle.repeat_interval:
            records.append(
                _record(
                    condition or current,
                    episode,
                    AlertState.FIRING,
                    now.wall,
                    repeat=current.repeat + 1,
                    previous_at=fired,
                )
            )
    return Evaluation(records, clearing)
