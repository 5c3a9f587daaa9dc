"""Alerts delivery in memory: a receiver standing in for an HTTP one, the clock injected."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client import CollectorRegistry

from contracts.alerts_file import ReceiverSpec, RetryPolicy, Route
from contracts.records import AlertState, AlertTransition
from services.alerts.delivery import Deliverer
from services.alerts.metrics import AlertsMetrics
from services.alerts.receivers import Attempt
from tests.unit.test_alerts_builders import transition, utc

AT = utc(2026, 12, 1, 9)


@dataclass
class Accepting:
    """A receiver that takes every notification (after ``refusals`` answers of 503)."""

    name: str = "hook"
    refusals: int = 0
    got: list[AlertTransition] = field(default_factory=list)

    async def attempt(self, record: AlertTransition) -> Attempt:
        if self.refusals:
            self.refusals -= 1
            return Attempt("retry", "HTTP 503")
        self.got.append(record)
        return Attempt("accepted", "HTTP 200")


def _deliverer(
    receiver: Accepting, now: list[float], problems: list[str]
) -> tuple[Deliverer, AlertsMetrics]:
    metrics = AlertsMetrics(CollectorRegistry(), [receiver.name])
    spec = ReceiverSpec.model_validate(
        {
            "name": receiver.name,
            "kind": "webhook",
            "url": "http://hook.test",
            "secret_env": "HOOK_SECRET",
        }
    )
    deliverer = Deliverer(
        {receiver.name: receiver},
        {receiver.name: spec},
        [Route(receivers=[receiver.name])],
        RetryPolicy(
            initial_backoff=timedelta(milliseconds=1), max_backoff=timedelta(milliseconds=1)
        ),
        metrics,
        wall_clock=lambda: AT + timedelta(seconds=now[0]),
        jitter=lambda: 0.0,
        note_error=problems.append,
    )
    return deliverer, metrics


async def test_the_delivery_latency_is_measured_on_the_injected_clock() -> None:
    """A record made at 09:00, accepted when the injected clock reads 09:00:42: 42 s."""
    receiver, problems = Accepting(), list[str]()
    deliverer, metrics = _deliverer(receiver, [42.0], problems)
    record = transition(AlertState.FIRING, at=AT, started_at=AT)
    await deliverer.deliver(record)
    assert receiver.got == [record]
    latency = metrics.delivery_latency.labels("hook")
    assert latency._sum.get() == 42.0


async def test_a_retried_receiver_is_told_to_the_watchdog() -> None:
    receiver, problems = Accepting(refusals=2), list[str]()
    deliverer, _ = _deliverer(receiver, [0.0], problems)
    await deliverer.deliver(transition(AlertState.FIRING, at=AT, started_at=AT))
    assert problems == [
        "receiver hook did not accept a notification (HTTP 503); retrying, attempt 1",
        "receiver hook did not accept a notification (HTTP 503); retrying, attempt 2",
    ]
