"""Delivery: the alerts topic, consumed in a group, each record handed to its receivers.

A record's offset is committed only after every receiver routed to it has accepted it, or
refused it with a 4xx, or has been given up on once its retry budget ran out (counted and
logged). Receivers are tried concurrently, so a slow one does not hold up the others' first
attempts. Records are delivered one at a time, in order per alert. Stopping interrupts a
retry and commits nothing, so a restart re-delivers: at least once, with a stable dedup key.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from contracts.alerts_file import ReceiverSpec, RetryPolicy, Route
from contracts.records import NOTIFIED_STATES, AlertTransition
from services.alerts.metrics import AlertsMetrics
from services.alerts.receivers import Attempt, Receiver
from services.alerts.retry import backoff, out_of_budget
from services.alerts.routing import route, wants
from services.common.batch_policy import BatchPolicy, Progress, Seeker
from services.common.config import KafkaSettings
from services.common.kafka import consumer_options, no_decoding, raw_headers

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """The service is stopping; the record stays uncommitted and will be re-delivered."""


class Deliverer:
    def __init__(
        self,
        receivers: Mapping[str, Receiver],
        specs: Mapping[str, ReceiverSpec],
        routes: Sequence[Route],
        policy: RetryPolicy,
        metrics: AlertsMetrics,
        *,
        wall_clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        note_error: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._receivers = receivers
        self._specs = specs
        self._routes = routes
        self._policy = policy
        self._metrics = metrics
        self._monotonic = monotonic
        self._jitter = jitter
        self._wall_clock = wall_clock
        self._note_error = note_error
        """Told why a record is held up (a receiver retried), for the delivery watchdog."""
        self.stopping = asyncio.Event()

    async def deliver(self, record: AlertTransition) -> None:
        """Hand ``record`` to every receiver that should get it; return when each is done."""
        if record.state not in NOTIFIED_STATES:
            return  # pending and inactive records are state, not notifications
        targets = []
        for name in route(record, self._routes):
            receiver = self._receivers.get(name)
            if receiver is None:
                continue  # configured but not enabled in this deployment
            if not wants(self._specs[name], record):
                self._metrics.skipped.labels(name).inc()
                continue
            targets.append(receiver)
        results = await asyncio.gather(
            *(self._deliver_to(r, record) for r in targets), return_exceptions=True
        )
        for result in results:
            if isinstance(result, Interrupted):
                raise result
            if isinstance(result, BaseException):
                raise result

    async def _deliver_to(self, receiver: Receiver, record: AlertTransition) -> None:
        started = self._monotonic()
        attempt_number = 0
        while True:
            attempt_number += 1
            try:
                attempt = await receiver.attempt(record)
            except Exception as exc:  # a receiver bug must not stall delivery
                log.exception("receiver failed unexpectedly", extra={"receiver": receiver.name})
                attempt = Attempt("retry", f"{type(exc).__name__}")
            if attempt.verdict == "accepted":
                self._metrics.sent.labels(receiver.name).inc()
                age = (self._wall_clock() - record.at).total_seconds()
                self._metrics.delivery_latency.labels(receiver.name).observe(max(0.0, age))
                return
            if attempt.verdict == "rejected":
                self._metrics.failed.labels(receiver.name, "rejected").inc()
                log.error(
                    "notification refused by the receiver; not retried",
                    extra=_context(receiver, record, attempt, attempt_number),
                )
                return
            wait = backoff(attempt_number, self._policy, self._jitter(), attempt.retry_after)
            if out_of_budget(self._monotonic() - started, wait, self._policy):
                self._metrics.failed.labels(receiver.name, "gave_up").inc()
                log.error(
                    "notification given up after its retry budget",
                    extra=_context(receiver, record, attempt, attempt_number),
                )
                return
            self._metrics.retried.labels(receiver.name).inc()
            self._note_error(
                f"receiver {receiver.name} did not accept a notification ({attempt.detail}); "
                f"retrying, attempt {attempt_number}"
            )
            log.warning(
                "notification not accepted; retrying",
                extra={**_context(receiver, record, attempt, attempt_number), "retry_in_s": wait},
            )
            await self._pause(wait)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            return
        raise Interrupted


def _context(
    receiver: Receiver, record: AlertTransition, attempt: Attempt, number: int
) -> dict[str, object]:
    return {
        "receiver": receiver.name,
        "alertname": record.alertname.value,
        "indicator": record.labels.get("indicator", ""),
        "alert_state": record.state.value,
        "dedup_key": record.dedup_key,
        "attempt": number,
        "result": attempt.detail,
    }


def subscribe_delivery(
    broker: KafkaBroker,
    deliverer: Deliverer,
    metrics: AlertsMetrics,
    batch_policy: BatchPolicy,
    *,
    kafka: KafkaSettings,
    topic: str,
    group_id: str,
    policy: RetryPolicy,
) -> Any:
    """Wire the delivery consumer into ``broker`` (manual commit after delivery); return the
    subscriber (its ``consumer`` is set once the broker started).

    A record that is not an alert record is counted and skipped (``batch_policy.invalid``). An
    unexpected error while delivering (a bug: receivers' own failures are retried inside
    ``deliver``) is not committed past: the record is read again after a back-off
    (``batch_policy.failed``), and a record that always fails stalls the partition, loudly."""
    # A record may legitimately take the whole retry budget; the group must not evict us.
    poll_interval_ms = int((policy.give_up_after.total_seconds() + 120) * 1000)
    records = broker.subscriber(
        topic,
        group_id=group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.MANUAL,
        max_poll_interval_ms=poll_interval_ms,
        decoder=no_decoding,
        parser=raw_headers,
        **consumer_options(kafka),
        title="alerts: delivery",
        description="Alert records handed to receivers; committed once every receiver is done.",
    )

    handler = DeliveryHandler(deliverer, metrics, batch_policy, lambda: records.consumer)
    records(handler.on_alert_record)  # registers the handler
    return records


class DeliveryHandler:
    """One alert record at a time: decode, deliver, commit (see ``subscribe_delivery``)."""

    def __init__(
        self,
        deliverer: Deliverer,
        metrics: AlertsMetrics,
        batch_policy: BatchPolicy,
        consumer: Callable[[], Seeker | None],
    ) -> None:
        self._deliverer = deliverer
        self._metrics = metrics
        self._policy = batch_policy
        self._consumer = consumer

    async def on_alert_record(self, message: KafkaMessage) -> None:
        if self._deliverer.stopping.is_set():
            return  # not committed: delivered after the restart
        raw = message.raw_message
        try:
            record = AlertTransition.model_validate_json(message.body or b"")
        except ValidationError:
            self._policy.invalid(
                "not an alert record",
                self._metrics.invalid_records,
                offset=getattr(raw, "offset", None),
            )
        else:
            try:
                await self._deliverer.deliver(record)
            except Interrupted:
                return
            except Exception as exc:  # noqa: BLE001 - a bug: read the record again, never skip it
                await self._policy.failed(exc, Progress([raw]), self._consumer())
                return
        self._policy.succeeded()
        try:
            await message.ack()
        except KafkaError as exc:  # a rebalance: the record is delivered again, never lost
            log.warning("offset commit refused", extra={"error": f"{type(exc).__name__}: {exc}"})
