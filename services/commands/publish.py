"""``roadmap-monitor publish FILE.ndjson [--via http|kafka]``: send events the way upstream does.

One JSON event per line (blank lines skipped). A progress bar runs on stderr when it is a
terminal; the summary says
how many were accepted, dropped as exact duplicates, or rejected, and why, with the first
rejected lines. Exit 0 when nothing was rejected, 2 otherwise, 1 when the stack cannot be
reached.

- ``--via http`` posts batches to ingest's ``POST /v1/events`` and reads each event's outcome
  from the answer. A line that is not JSON is posted on its own, so it cannot spoil its batch.
  A 503 (ingest starting, or its broker down) is retried, after ``Retry-After``, for up to
  ``--wait`` seconds; the batch refused is sent again, never one that was accepted. A 429 (this
  publisher over its rate) waits its ``Retry-After`` and sends the same batch again, for as long
  as it takes. A 401 (the token) stops at once; a 413 splits the batch until ingest takes it; a
  403 is read like a 422: the events outside the publisher's scope are rejected as ``forbidden``.
- ``--via kafka`` produces each line to the upstream topic of its ``type`` and then follows the
  canonical and DLQ topics until every line's outcome is seen (or ``--wait`` runs out: an exact
  duplicate of an event accepted earlier produces no record at all).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from contracts.codec import parse_json
from contracts.events import EventType
from contracts.records import DlqRecord
from contracts.topics import CANONICAL_EVENTS, DEAD_LETTERS, UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.kafka import client_options
from services.common.reading import state_reader, topic_partitions

EXIT_OK, EXIT_UNREACHABLE, EXIT_REJECTED = 0, 1, 2
BATCH_EVENTS = 500
BATCH_BYTES = 512 * 1024


@dataclass
class Tally:
    total: int
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    unseen: int = 0
    examples: list[str] = field(default_factory=list)
    stopped: str | None = None
    """Why publishing stopped before the last line (the rest was not sent)."""
    throttled: int = 0
    """How many times ingest answered 429 (over this publisher's rate)."""
    throttled_s: float = 0.0
    """Seconds spent waiting for those."""

    @property
    def done(self) -> int:
        return self.accepted + self.duplicates + sum(self.rejected.values()) + self.unseen

    def throttle(self, pause: float) -> float:
        """Count a 429 and the ``pause`` it asks for; return the pause."""
        self.throttled += 1
        self.throttled_s += pause
        return pause

    def reject(self, line_number: int, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        if len(self.examples) < 10:
            self.examples.append(f"  line {line_number}: {reason}: {detail}")


class Progress:
    """How far publishing has got, on stderr. On a terminal, ``rich``'s bar (lines sent of the
    total, rate, time left), redrawn by rich at most ten times a second; anywhere else (a file,
    a pipe, CI) no bar, only the last line: ``sent 1,234/5,000 lines``."""

    def __init__(self, err: TextIO, total: int) -> None:
        self._err, self._total = err, total
        self._bar: RichProgress | None = None
        if err.isatty():
            self._bar = RichProgress(
                TextColumn("publishing"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("lines"),
                TimeRemainingColumn(),
                console=Console(file=err),
                transient=False,
            )
            self._task = self._bar.add_task("publish", total=total)
            self._bar.start()

    def show(self, done: int, *, final: bool = False) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done)
            if final:
                self._bar.stop()
        elif final:
            self._err.write(f"sent {done:,}/{self._total:,} lines\n")
            self._err.flush()


def read_lines(path: Path) -> list[tuple[int, bytes]]:
    """(line number, bytes) of every non-blank line."""
    with path.open("rb") as file:
        return [(n, line.strip()) for n, line in enumerate(file, start=1) if line.strip()]


def _readable_by_ingest(line: bytes) -> bool:
    """Whether ingest can read ``line`` inside an array: UTF-8 JSON (no BOM), not too deep."""
    try:
        parse_json(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return True


def _batches(lines: Sequence[tuple[int, bytes]]) -> list[list[tuple[int, bytes]]]:
    batches: list[list[tuple[int, bytes]]] = []
    current: list[tuple[int, bytes]] = []
    size = 0
    for number, line in lines:
        if not _readable_by_ingest(line):
            batches.append([(number, line)])  # alone, so the array around it stays valid
            continue
        if current and (len(current) >= BATCH_EVENTS or size + len(line) > BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append((number, line))
        size += len(line) + 1
    if current:
        batches.append(current)
    return batches


def _retry_after(response: httpx.Response, default: float = 1.0) -> float:
    """``Retry-After`` in seconds (ingest sends whole seconds), else ``default``."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", default)))
    except ValueError:
        return default


def _error_of(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", "")) or response.text[:200]
    except ValueError:
        return response.text[:200]


def _count_answer(tally: Tally, batch: list[tuple[int, bytes]], answer: dict[str, Any]) -> None:
    """Each event's outcome from a 202, 403 or 422 answer, by its index in the batch."""
    tally.accepted += len(answer["accepted"])
    tally.duplicates += len(answer["duplicates"])
    for rejection in answer["rejected"]:
        number = batch[rejection["index"]][0]
        tally.reject(number, rejection["reason"], rejection["detail"])


def publish_http(
    lines: Sequence[tuple[int, bytes]],
    url: str,
    token: str | None,
    err: TextIO,
    *,
    wait_s: float = 30.0,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Tally:
    """Post ``lines`` in batches; each event's outcome goes into the tally. On a 401, or a 503
    that lasts past ``wait_s``, the tally says why it ``stopped`` and the rest is not sent."""
    tally = Tally(len(lines))
    progress = Progress(err, len(lines))
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    endpoint = f"{url.rstrip('/')}/v1/events"
    pending = deque(_batches(lines))
    unavailable_since: float | None = None
    with client or httpx.Client(timeout=60) as http:
        while pending:
            batch = pending.popleft()
            # A line ingest cannot read in an array is posted as it is: ingest rejects it to
            # the DLQ with its reason (not_json, not_utf8, ...), so it is kept there too.
            raw = len(batch) == 1 and not _readable_by_ingest(batch[0][1])
            body = batch[0][1] if raw else b"[" + b",".join(line for _, line in batch) + b"]"
            response = http.post(endpoint, content=body, headers=headers)
            status = response.status_code
            if status == 503:
                now = monotonic()
                unavailable_since = now if unavailable_since is None else unavailable_since
                if now - unavailable_since >= wait_s:
                    tally.stopped = (
                        f"ingest at {url} was not ready for {wait_s:.0f} s (503: "
                        f"{_error_of(response)}); nothing from line {batch[0][0]} on was sent"
                    )
                    break
                pending.appendleft(batch)  # not published (ingest says so): the same batch again
                sleep(min(_retry_after(response), max(0.0, wait_s - (now - unavailable_since))))
                continue
            unavailable_since = None
            if status == 429:
                pending.appendleft(batch)  # nothing was published: the same batch, later
                sleep(tally.throttle(_retry_after(response)))
                continue
            if status == 401:
                tally.stopped = (
                    f"ingest at {url} refused the token (401: {_error_of(response)}); set "
                    f"INGEST_API_TOKEN to the token ingest was started with; nothing from line "
                    f"{batch[0][0]} on was sent"
                )
                break
            if status in (400, 413) and len(batch) > 1:
                middle = len(batch) // 2  # find the culprit, or a size ingest takes
                pending.extendleft([batch[middle:], batch[:middle]])
                continue
            if status == 400:
                tally.reject(batch[0][0], "not_json", _error_of(response))
            elif status == 413:
                tally.reject(batch[0][0], "request_too_large", f"not sent: {_error_of(response)}")
            elif status in (202, 403, 422):
                _count_answer(tally, batch, response.json())
            else:
                tally.stopped = (
                    f"ingest at {url} answered {status} ({_error_of(response)}); nothing from "
                    f"line {batch[0][0]} on was sent"
                )
                break
            progress.show(tally.done)
    progress.show(tally.done, final=True)
    return tally


def _object(line: bytes) -> dict[str, object] | None:
    """The line as a JSON object, or None for anything else (invalid, too deep, not an object)."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _type_of(line: bytes) -> EventType | None:
    kind = (_object(line) or {}).get("type")
    try:
        return EventType(kind) if isinstance(kind, str) else None
    except ValueError:
        return None


def _event_id(line: bytes) -> str | None:
    event_id = (_object(line) or {}).get("event_id")
    return event_id if isinstance(event_id, str) else None


async def publish_kafka(
    lines: Sequence[tuple[int, bytes]], kafka: KafkaSettings, wait_s: float, err: TextIO
) -> Tally:
    tally = Tally(len(lines))
    progress = Progress(err, len(lines))
    outputs = [kafka.topic_name(CANONICAL_EVENTS), kafka.topic_name(DEAD_LETTERS)]
    consumer = state_reader(kafka, client_id=f"{kafka.client_id}-publish")
    producer = AIOKafkaProducer(**client_options(kafka), acks="all")
    await consumer.start()
    await producer.start()
    try:
        partitions = [tp for topic in outputs for tp in await topic_partitions(consumer, topic)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)  # fix the starting point before anything is sent
        waiting: dict[tuple[str, int, int], int] = {}  # (topic, partition, offset) -> line
        by_event_id: dict[str, list[int]] = {}
        first_seen: dict[bytes, int] = {}
        copies: dict[int, int] = {}  # line -> the earlier line it repeats byte for byte
        sends = []
        for number, line in lines:
            event_type = _type_of(line)
            if event_type is None:
                tally.reject(number, "not_sent", "no known 'type', so no upstream topic")
                continue
            topic = kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[event_type])
            if line in first_seen:
                copies[number] = first_seen[line]
            first_seen.setdefault(line, number)
            sends.append((number, line, await producer.send(topic, line)))
        for number, line, future in sends:
            sent = await future
            waiting[(sent.topic, sent.partition, sent.offset)] = number
            event_id = _event_id(line)
            if event_id is not None:
                by_event_id.setdefault(event_id, []).append(number)
        await _follow_outcomes(
            consumer,
            outputs,
            waiting=waiting,
            by_event_id=by_event_id,
            copies=copies,
            tally=tally,
            progress=progress,
            wait_s=wait_s,
        )
    finally:
        await producer.stop()
        await consumer.stop()
    tally.unseen = len(lines) - tally.done + tally.unseen
    progress.show(tally.done, final=True)
    return tally


async def _follow_outcomes(
    consumer: AIOKafkaConsumer,
    outputs: list[str],
    *,
    waiting: dict[tuple[str, int, int], int],
    by_event_id: dict[str, list[int]],
    copies: dict[int, int],
    tally: Tally,
    progress: Progress,
    wait_s: float,
) -> None:
    """Match canonical records by event id and DLQ records by their source position."""
    canonical, dlq = outputs
    deadline = time.monotonic() + wait_s
    accounted: set[int] = set()
    # A line repeating an event id already seen in this file gets no record of its own.
    expected = len(waiting) - len(copies)
    while len(accounted) < expected and time.monotonic() < deadline:
        batches = await consumer.getmany(timeout_ms=500)
        for tp, records in batches.items():
            for record in records:
                if tp.topic == canonical:
                    event_id = _event_id(record.value or b"")
                    numbers = [n for n in by_event_id.get(event_id or "", []) if n not in accounted]
                    if numbers:
                        accounted.add(numbers[0])
                        tally.accepted += 1
                elif tp.topic == dlq:
                    try:
                        rejected = DlqRecord.model_validate_json(record.value or b"")
                    except ValueError:
                        continue
                    key = (
                        rejected.source_topic,
                        rejected.source_partition or 0,
                        rejected.source_offset or 0,
                    )
                    number = waiting.get(key)
                    if number is not None and number not in accounted:
                        accounted.add(number)
                        tally.reject(number, rejected.reason.value, rejected.detail)
        progress.show(tally.done)
    # A line that repeats an accepted line of this file byte for byte is its exact duplicate.
    for number, original in copies.items():
        if original in accounted and number not in accounted:
            accounted.add(number)
            tally.duplicates += 1


def summary(tally: Tally, path: Path, via: str) -> str:
    lines = [
        f"published {tally.total:,} lines of {path} via {via}: {tally.accepted:,} accepted, "
        f"{tally.duplicates:,} exact duplicates, {sum(tally.rejected.values()):,} rejected"
    ]
    if tally.unseen:
        lines[0] += (
            f", {tally.unseen:,} with no outcome seen (an exact duplicate of an event accepted "
            "earlier produces none; or ingest is not running)"
        )
    if tally.throttled:
        lines.append(
            f"slowed to the publisher's rate: {tally.throttled:,} answers 429, "
            f"{tally.throttled_s:,.0f} s waited"
        )
    if tally.rejected:
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in tally.rejected.most_common())
        lines.append(f"rejected by reason: {reasons}")
        lines += tally.examples
    return "\n".join(lines) + "\n"


def run_publish(
    path: Path,
    *,
    via: str,
    ingest_url: str,
    token: str | None,
    kafka: KafkaSettings,
    wait_s: float,
    out: TextIO,
    err: TextIO,
) -> int:
    """Publish ``path``; print the summary; exit 0, 1 (unreachable) or 2 (some rejected)."""
    try:
        lines = read_lines(path)
    except OSError as exc:
        err.write(f"roadmap-monitor publish: cannot read {path}: {exc.strerror}\n")
        return EXIT_REJECTED
    try:
        if via == "http":
            tally = publish_http(lines, ingest_url, token, err, wait_s=wait_s)
        else:
            tally = asyncio.run(publish_kafka(lines, kafka, wait_s, err))
    except (httpx.HTTPError, OSError) as exc:
        if via == "http":
            where = f"ingest does not answer at {ingest_url}"
        else:
            where = f"the broker does not answer at {kafka.bootstrap_servers}"
        err.write(f"\nroadmap-monitor publish: {where}: {type(exc).__name__}: {exc}\n")
        return EXIT_UNREACHABLE
    except Exception as exc:  # noqa: BLE001 - a Kafka client error names what failed
        err.write(
            f"\nroadmap-monitor publish: the broker at {kafka.bootstrap_servers}: "
            f"{type(exc).__name__}: {exc}\n"
        )
        return EXIT_UNREACHABLE
    if tally.stopped:
        err.write(f"roadmap-monitor publish: stopped: {tally.stopped}\n")
        out.write(summary(tally, path, via))
        return EXIT_UNREACHABLE
    out.write(summary(tally, path, via))
    return EXIT_REJECTED if tally.rejected else EXIT_OK
