"""Routing: which receivers a record goes to, and whether each receiver wants it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.alerts_file import ReceiverSpec, Route, load_alerts_file
from contracts.records import AlertState, AlertTransition
from services.alerts.routing import route, wants
from tests.unit.test_alerts_builders import W0, transition

ALERTS_PATH = Path(__file__).parents[2] / "deploy" / "alerts.yaml"
SHIPPED_ROUTES = load_alerts_file(ALERTS_PATH).routes


def _routes(*specs: dict[str, Any]) -> list[Route]:
    return [Route.model_validate(s) for s in specs]


def _receiver(**fields: Any) -> ReceiverSpec:
    return ReceiverSpec.model_validate({"name": "r", "kind": "console", **fields})


def _firing(severity: str = "warning", owner: str = "industry-office") -> AlertTransition:
    return transition(AlertState.FIRING, at=W0, started_at=W0, severity=severity, owner=owner)


# -- route -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "receivers"),
    [
        ("info", ["console", "alertmanager"]),
        ("warning", ["console", "alertmanager", "webhook"]),
        ("critical", ["console", "alertmanager", "webhook", "chat"]),
    ],
)
def test_shipped_routes_by_severity(severity: str, receivers: list[str]) -> None:
    """deploy/alerts.yaml: everything to console and Alertmanager, warning and critical also to
    the webhook, critical also to chat, in that order."""
    assert route(_firing(severity), SHIPPED_ROUTES) == receivers


def test_continue_false_stops_later_routes() -> None:
    """The first matching route with continue: false ends routing."""
    routes = _routes(
        {"match": {"severity": ["critical"]}, "receivers": ["pager"], "continue": False},
        {"receivers": ["console"]},
    )
    assert route(_firing("critical"), routes) == ["pager"]
    assert route(_firing("warning"), routes) == ["console"]


def test_a_non_matching_route_with_continue_false_does_not_stop() -> None:
    """continue: false only matters when its route matched."""
    routes = _routes(
        {"match": {"owner": ["platform"]}, "receivers": ["ops"], "continue": False},
        {"receivers": ["console"]},
    )
    assert route(_firing(owner="industry-office"), routes) == ["console"]
    assert route(_firing(owner="platform"), routes) == ["ops"]


def test_every_label_of_a_match_must_hold() -> None:
    """match {severity: [warning], owner: [platform]} needs both."""
    routes = _routes(
        {"match": {"severity": ["warning"], "owner": ["platform"]}, "receivers": ["a"]}
    )
    assert route(_firing("warning", "platform"), routes) == ["a"]
    assert route(_firing("warning", "industry-office"), routes) == []
    assert route(_firing("critical", "platform"), routes) == []


def test_receivers_are_listed_once_in_first_seen_order() -> None:
    """Receivers named by several routes appear once, where first named."""
    routes = _routes(
        {"receivers": ["b", "a"]},
        {"match": {"severity": ["warning"]}, "receivers": ["a", "c", "b"]},
    )
    assert route(_firing("warning"), routes) == ["b", "a", "c"]


def test_match_on_alertname_and_indicator() -> None:
    """alertname and indicator labels can be matched too."""
    routes = _routes(
        {
            "match": {"alertname": ["RoadmapTargetBehind"], "indicator": ["jobs_created"]},
            "receivers": ["jobs"],
        },
        {"match": {"alertname": ["RoadmapDeadlineMissed"]}, "receivers": ["deadline"]},
    )
    assert route(_firing(), routes) == ["jobs"]


# -- wants -----------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [AlertState.PENDING, AlertState.INACTIVE])
def test_pending_and_inactive_are_never_sent(state: AlertState) -> None:
    """Only firing and resolved records are notifications."""
    record = transition(state, at=W0, started_at=W0)
    assert not wants(_receiver(), record)
    assert not wants(_receiver(send_resolved=True, repeat_interval="4h"), record)


def test_send_resolved_false_skips_resolved_records() -> None:
    """A receiver with send_resolved false gets firing records but no resolved ones."""
    resolved = transition(AlertState.RESOLVED, at=W0 + timedelta(hours=1), started_at=W0)
    assert wants(_receiver(), resolved)
    assert not wants(_receiver(send_resolved=False), resolved)
    assert wants(_receiver(send_resolved=False), _firing())


def test_resolved_is_sent_whatever_the_repeat_interval() -> None:
    """The repeat filter only applies to repeats."""
    resolved = transition(AlertState.RESOLVED, at=W0 + timedelta(minutes=13), started_at=W0)
    assert wants(_receiver(repeat_interval="4h"), resolved)


def test_repeat_filter_with_a_4h_interval_and_1m_repeats() -> None:
    """Episode started (pending) at W0, firing at +10m, then a repeat every minute up to +9h.
    A 4h receiver gets the firing record and only the repeats at +4h (elapsed crosses 4h: 240m
    // 240m = 1 > 239m // 240m = 0) and +8h; the one without an interval gets all 530."""
    four_hours = _receiver(repeat_interval="4h")
    every = _receiver()
    firing = transition(AlertState.FIRING, at=W0 + timedelta(minutes=10), started_at=W0)
    assert wants(four_hours, firing)
    passed = []
    all_passed = 0
    for n, minute in enumerate(range(11, 9 * 60 + 1), start=1):
        record = transition(
            AlertState.FIRING,
            at=W0 + timedelta(minutes=minute),
            started_at=W0,
            repeat=n,
            previous_at=W0 + timedelta(minutes=minute - 1),
        )
        if wants(four_hours, record):
            passed.append(record.at - W0)
        all_passed += wants(every, record)
    assert passed == [timedelta(hours=4), timedelta(hours=8)]
    assert all_passed == 9 * 60 - 10


@pytest.mark.parametrize(
    ("previous", "now", "sent"),
    [
        (timedelta(hours=3, minutes=50), timedelta(hours=4, minutes=10), True),  # crosses 4h
        (timedelta(hours=4), timedelta(hours=7, minutes=59), False),  # same 4h slot
        (timedelta(hours=3), timedelta(hours=9), True),  # a gap over two slots
        (timedelta(hours=7, minutes=59, seconds=59), timedelta(hours=8), True),
    ],
)
def test_repeat_filter_with_irregular_repeats(
    previous: timedelta, now: timedelta, sent: bool
) -> None:
    """A repeat passes when time since the episode start crosses a multiple of 4h since the
    previous repeat, whatever the gap between evaluations."""
    record = transition(
        AlertState.FIRING, at=W0 + now, started_at=W0, repeat=5, previous_at=W0 + previous
    )
    assert wants(_receiver(repeat_interval="4h"), record) is sent


@given(
    gaps=st.lists(st.integers(min_value=1, max_value=3 * 3600), min_size=1, max_size=200),
)
def test_repeat_filter_sends_at_most_one_per_slot(gaps: list[int]) -> None:
    """Over any sequence of repeats, a 1h receiver gets at most one per hour since the episode
    started, and exactly one in every hour after the first in which some repeat happened (the
    first hour already had the firing record)."""
    receiver = _receiver(repeat_interval="1h")
    previous = W0 + timedelta(minutes=10)
    elapsed = 600
    sent_slots: list[int] = []
    seen_slots = set()
    for n, gap in enumerate(gaps, start=1):
        elapsed += gap
        at = W0 + timedelta(seconds=elapsed)
        record = transition(AlertState.FIRING, at=at, started_at=W0, repeat=n, previous_at=previous)
        slot = elapsed // 3600
        if slot > 0:
            seen_slots.add(slot)
        if wants(receiver, record):
            sent_slots.append(slot)
        previous = at
    assert len(sent_slots) == len(set(sent_slots))
    assert set(sent_slots) == seen_slots - {0}


def test_zero_receiver_repeat_interval_is_refused_or_harmless() -> None:
    """A receiver ``repeat_interval: 0s`` must either be refused when the file is validated, or
    mean something harmless (e.g. every repeat) - never crash the delivery of a repeat."""
    try:
        receiver = ReceiverSpec.model_validate(
            {"name": "console", "kind": "console", "repeat_interval": "0s"}
        )
    except ValueError:
        return  # refused at start-up: fine
    repeat = transition(
        AlertState.FIRING,
        at=W0 + timedelta(minutes=12),
        started_at=W0,
        repeat=2,
        previous_at=W0 + timedelta(minutes=11),
    )
    assert isinstance(wants(receiver, repeat), bool)
