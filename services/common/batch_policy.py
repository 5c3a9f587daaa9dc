"""One way every consumer of the product handles what it fetched: decode, process, commit.

The steps, and what each outcome gets:

- **Decode.** A record that is not the shape the consumer expects is an *invalid* record:
  ``invalid()`` counts it (in the caller's counter) and logs the first of each kind, not every
  one; ingest dead-letters it as well. Processing goes on with the next record.
- **Process.** Each record processed is marked in ``Progress``. An *unexpected error* (a bug in
  a fold, a receiver that raises) gets ``failed()``: nothing of the batch is committed; each
  partition's position goes back to its first unprocessed record, so the records already done
  are not done twice and the failing one is read again; the error is counted
  (``roadmap_consumer_batch_errors_total``), told to the watchdog and logged once per distinct
  error; the consumer waits the shared backoff (``services.common.backoff``) before it reads
  again. A record that always fails holds its partition, and after ``STALL_AFTER`` the watchdog
  reports it stalled, naming the error: loud, never a record skipped in silence.
- **Commit.** Offsets are committed only for records whose work is done: ingest and delivery
  after the batch or record succeeded, metrics the positions it folded up to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError
from prometheus_client import Counter

from services.common.backoff import Attempts, Backoff

log = logging.getLogger(__name__)


class Seeker(Protocol):
    """What rewinding needs of a consumer (aiokafka's ``seek``)."""

    def seek(self, partition: TopicPartition, offset: int) -> None: ...


class Progress:
    """Per partition of a batch, the first record not yet processed."""

    def __init__(self, records: Iterable[ConsumerRecord[bytes, bytes]]) -> None:
        self._next: dict[TopicPartition, int] = {}
        for record in records:
            self._next.setdefault(TopicPartition(record.topic, record.partition), record.offset)

    def processed(self, record: ConsumerRecord[bytes, bytes]) -> None:
        self._next[TopicPartition(record.topic, record.partition)] = record.offset + 1

    def unprocessed(self) -> dict[TopicPartition, int]:
        """Where each partition must be read again from after a failure."""
        return dict(self._next)

    def rewind(self, consumer: Seeker | None) -> None:
        """Seek each partition back; one taken away meanwhile (a rebalance) is left to its new
        owner, which starts from the committed offset, before anything of this batch."""
        if consumer is None:
            return
        for tp, offset in self._next.items():
            try:
                consumer.seek(tp, offset)
            except IllegalStateError:  # no longer assigned
                continue


class BatchPolicy:
    """The policy of one consumer: ``invalid``, ``failed`` and ``succeeded``."""

    def __init__(
        self,
        *,
        service: str,
        consumer: str,
        errors: Counter,
        note_error: Callable[[str], None],
        retry_max_s: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.consumer = consumer
        self._errors = errors.labels(service, consumer)
        self._note_error = note_error
        self._attempts = Attempts(Backoff(initial_s=0.5, max_s=retry_max_s))
        self._sleep = sleep
        self._invalid_kinds: set[str] = set()
        self._failing: str | None = None

    def invalid(self, kind: str, counter: Counter, **where: object) -> None:
        """A record of the wrong shape: counted every time, logged the first time per kind."""
        counter.inc()
        if kind in self._invalid_kinds:
            return
        self._invalid_kinds.add(kind)
        log.warning(
            "record skipped: %s (further ones of this kind are counted, not logged)",
            kind,
            extra={"consumer": self.consumer, "kind": kind, **where},
        )

    async def failed(
        self, error: BaseException | str, progress: Progress, seeker: Seeker | None
    ) -> None:
        """An unexpected error: rewind to the first unprocessed records, count, tell, wait."""
        progress.rewind(seeker)
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self._errors.inc()
        self._note_error(text)
        if text != self._failing:
            self._failing = text
            log.error(
                "batch failed; reading it again from its first unprocessed records",
                extra={
                    "consumer": self.consumer,
                    "error": text,
                    "from": ",".join(
                        f"{tp.topic}:{tp.partition}@{offset}"
                        for tp, offset in sorted(progress.unprocessed().items())
                    ),
                },
                exc_info=error if isinstance(error, BaseException) else None,
            )
        await self._sleep(self._attempts.next_wait())

    def succeeded(self) -> None:
        """The batch was done and committed: the backoff and the once-per-error log start over."""
        self._attempts.reset()
        self._failing = None
