"""One partition that cannot be read must neither stop nor lose the records of the others.

aiokafka decodes a partition's fetched records while it hands a ``getmany`` result to the
application. When one partition's data cannot be decoded (a compression codec that is missing,
a batch whose CRC does not match, a header key that is not UTF-8, a compressed payload that
does not decompress), the exception ends the whole ``getmany`` call: the records already taken
from other partitions in that call are dropped although their positions have moved on. Seen
here: with one partition unreadable, 1,199 of 2,000 records of a healthy partition never reached
the application, which would then have committed past them. FastStream's consume loop, on top,
sleeps 5 s after each such error, or ends for good on an exception that is not a ``KafkaError``.

``install()`` changes two things in aiokafka's fetcher, for every consumer in the process:

- each partition's fetched records are handed out through ``_GuardedRecords``: an error while
  decoding ends that partition's records at the last good one (its position stays on the
  record that failed), the partition is paused for ``RETRY_S`` and then fetched again, and the
  error is noted in ``UNREADABLE`` for the progress watchdog to report. The other partitions
  of the same call are returned as usual.
- a record batch whose C decoder refuses a header key that is not UTF-8 is decoded again by
  ``lenient_records``, which keeps such a key as text with the bad bytes escaped
  (``surrogateescape``), so ingest can dead-letter the record instead of stopping on it.

One pause flag per partition is shared with the application: ``read_last`` pauses the
partitions it is not reading back. ``hold``/``release`` are how the application pauses and
resumes through the guard, so neither ends the other's pause: a partition resting after a
decoding error stays paused when ``read_last`` releases it, and one ``read_last`` holds stays
paused when its rest ends.

Upstream: aiokafka raises a decoding error out of ``getmany`` and drops what it had already
taken from other partitions (aio-libs/aiokafka#321, "Skip and proceed in the case of
CorruptRecordException", open since 2018); its C decoder refuses a header key that is not
UTF-8 (no aiokafka issue found; FastStream's parser has the same trouble, ag2ai/faststream#2458).
The guard can go once aiokafka hands out a partition's good records and reports the bad batch
per partition, and decodes header keys leniently; until then aiokafka is pinned below 0.15,
the releases whose fetcher has the shape patched here, and every service checks that shape at
start-up (``shape_problems``, through ``services.common.private_apis``) and refuses to start,
naming the aiokafka version, if it differs. The unit tests run aiokafka's own ``Fetcher``.
"""

from __future__ import annotations

import asyncio
import inspect
import struct
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import aiokafka
from aiokafka import TopicPartition, codec
from aiokafka.consumer import fetcher
from aiokafka.consumer.subscription_state import TopicPartitionState
from aiokafka.record.util import decode_varint

RETRY_S = 1.0
"""How long an unreadable partition rests before it is fetched again."""

_BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
_LOG_OVERHEAD = 12  # base offset (int64) + batch length (int32)
_MAGIC_AT = 16
_LOG_APPEND_TIME = 1
_DECODERS: dict[int, Callable[[bytes], bytes]] = {
    1: codec.gzip_decode,
    2: codec.snappy_decode,
    3: codec.lz4_decode,
    4: codec.zstd_decode,
}


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Why a partition cannot be read: where it stopped, the error, when it was first seen."""

    offset: int
    error: str
    since: float
    """``time.monotonic()`` of the first failure at this offset."""


class UnreadablePartitions:
    """The partitions this process could not decode, by topic and partition."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._found: dict[tuple[str, int], Unreadable] = {}
        self._monotonic = monotonic

    def note(self, tp: tuple[str, int], offset: int, exc: BaseException) -> None:
        known = self._found.get(tp)
        since = known.since if known is not None and known.offset == offset else self._monotonic()
        self._found[(tp[0], tp[1])] = Unreadable(offset, f"{type(exc).__name__}: {exc}", since)

    def clear(self, tp: tuple[str, int]) -> None:
        self._found.pop((tp[0], tp[1]), None)

    def get(self, tp: tuple[str, int]) -> Unreadable | None:
        return self._found.get((tp[0], tp[1]))

    def __contains__(self, tp: object) -> bool:
        return tp in self._found


UNREADABLE = UnreadablePartitions()
"""What the fetch guard found in this process (one per process, as the patch is)."""


class LenientRecord(NamedTuple):
    """A record decoded by ``lenient_records``: the attributes aiokafka's fetcher reads."""

    offset: int
    timestamp: int
    timestamp_type: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    checksum: None = None


def _bytes_at(buffer: bytes, pos: int) -> tuple[bytes | None, int]:
    length, pos = decode_varint(buffer, pos)
    if length < 0:
        return None, pos
    return buffer[pos : pos + length], pos + length


def lenient_records(batch: bytes | memoryview) -> Iterator[LenientRecord]:
    """The records of one v2 record batch, header keys decoded with ``surrogateescape``.

    Used only for a batch the fast decoder refused: a key that is not UTF-8 comes out as text
    that cannot be encoded back to UTF-8 (``key.encode()`` raises), so a consumer can tell.
    """
    data = bytes(batch)
    (base_offset, _, _, _, _, attributes, _, first_ts, max_ts, _, _, _, count) = (
        _BATCH_HEADER.unpack_from(data)
    )
    body = data[_BATCH_HEADER.size :]
    compression = attributes & 0x07
    if compression:
        body = _DECODERS[compression](body)
    timestamp_type = (attributes >> 3) & 1
    pos = 0
    for _ in range(count):
        _, pos = decode_varint(body, pos)  # the record's length
        pos += 1  # attributes (unused in v2)
        ts_delta, pos = decode_varint(body, pos)
        offset_delta, pos = decode_varint(body, pos)
        key, pos = _bytes_at(body, pos)
        value, pos = _bytes_at(body, pos)
        header_count, pos = decode_varint(body, pos)
        headers: list[tuple[str, bytes | None]] = []
        for _ in range(header_count):
            raw_key, pos = _bytes_at(body, pos)
            header_value, pos = _bytes_at(body, pos)
            headers.append(((raw_key or b"").decode("utf-8", "surrogateescape"), header_value))
        timestamp = max_ts if timestamp_type == _LOG_APPEND_TIME else first_ts + ts_delta
        yield LenientRecord(
            base_offset + offset_delta, timestamp, timestamp_type, key, value, headers
        )


class _HeaderTolerantBatch:
    """A v2 batch from aiokafka's fast decoder, re-read leniently if it refuses a header key."""

    def __init__(self, batch: Any, raw: memoryview) -> None:
        self._batch = batch
        self._raw = raw
        self._records: Iterator[Any] | None = None

    def __getattr__(self, name: str) -> Any:  # the batch's properties (offsets, CRC, flags)
        return getattr(self._batch, name)

    def __iter__(self) -> Iterator[Any]:
        if self._records is None:
            # The whole batch at once, by the C decoder: no Python frame per record (a batch is
            # at most a fetch's size). Refused, the batch is read again leniently, in full.
            try:
                self._records = iter(list(self._batch))
            except UnicodeDecodeError:  # a header key that is not UTF-8
                self._records = lenient_records(self._raw)
        return self._records

    def __next__(self) -> Any:  # aiokafka reads a control batch's marker with next()
        return next(iter(self))


class _HeaderTolerantMemoryRecords:
    """aiokafka's ``MemoryRecords`` with v2 batches wrapped in ``_HeaderTolerantBatch``."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._inner = _MEMORY_RECORDS(data)
        self._pos = 0

    def size_in_bytes(self) -> int:
        return int(self._inner.size_in_bytes())

    def has_next(self) -> bool:
        return bool(self._inner.has_next())

    def next_batch(self) -> Any:
        batch = self._inner.next_batch()
        if batch is None:
            return None
        start = self._pos
        (length,) = struct.unpack_from(">i", self._data, start + 8)
        self._pos = start + _LOG_OVERHEAD + length
        if self._data[start + _MAGIC_AT] < 2:
            return batch  # legacy formats carry no headers
        return _HeaderTolerantBatch(batch, self._data[start : self._pos])


class _GuardedRecords:
    """One partition's fetched records: a decoding error ends them instead of raising."""

    def __init__(self, tp: TopicPartition, assignment: Any, records: Any) -> None:
        self._tp = tp
        self._assignment = assignment
        self._records = records
        # aiokafka's getall() iterates afresh on each call and getone() calls next(): both
        # resume this one generator (a generator, not __next__: one Python call fewer per record).
        self._stream = self._guarded()

    @property
    def next_fetch_offset(self) -> int:
        return int(self._records.next_fetch_offset)

    def __iter__(self) -> Iterator[Any]:
        return self._stream

    def __next__(self) -> Any:
        return next(self._stream)

    def _guarded(self) -> Iterator[Any]:
        records = iter(self._records)
        try:
            first = next(records, None)
            if first is None:
                return
            UNREADABLE.clear(self._tp)  # a record came through: the partition is readable again
            yield first
            yield from records
        except Exception as exc:  # noqa: BLE001 - whatever the decoder raised, the partition waits
            UNREADABLE.note(self._tp, self.next_fetch_offset, exc)
            self._rest()

    def _rest(self) -> None:
        """Pause the partition for ``RETRY_S``: no fetch of it until then, the others go on."""
        state = self._assignment.state_value(self._tp)
        if state is None or state in _RESTING:
            return
        _RESTING.add(state)
        state.pause()
        try:
            asyncio.get_running_loop().call_later(RETRY_S, _wake, state)
        except RuntimeError:  # no running loop: nothing to resume later
            _RESTING.discard(state)


_RESTING: weakref.WeakSet[Any] = weakref.WeakSet()
"""Partition states the guard paused and will resume."""
_HELD: weakref.WeakSet[Any] = weakref.WeakSet()
"""Partition states the application paused through ``hold``."""


def _wake(state: Any) -> None:
    _RESTING.discard(state)
    if state not in _HELD and state.paused:
        state.resume()


def _states(consumer: Any, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, Any]:
    subscription = getattr(getattr(consumer, "_subscription", None), "subscription", None)
    if subscription is None:
        return {}  # not an aiokafka consumer (the service tier's in-memory one): no guard
    assignment = subscription.assignment
    found = {tp: assignment.state_value(tp) for tp in partitions}
    return {tp: state for tp, state in found.items() if state is not None}


def hold(consumer: Any, partitions: Iterable[TopicPartition]) -> None:
    """``consumer.pause(*partitions)`` for the application: not ended by a rest's end."""
    partitions = list(partitions)
    _HELD.update(_states(consumer, partitions).values())
    consumer.pause(*partitions)


def release(consumer: Any, partitions: Iterable[TopicPartition]) -> None:
    """``consumer.resume`` of what ``hold`` paused, except partitions the guard is resting
    (they resume when their rest ends)."""
    partitions = list(partitions)
    resting = set()
    for tp, state in _states(consumer, partitions).items():
        _HELD.discard(state)
        if state in _RESTING:
            resting.add(tp)
    consumer.resume(*[tp for tp in partitions if tp not in resting])


_MEMORY_RECORDS: Any = fetcher.MemoryRecords
_FETCH_RESULT_INIT: Any = fetcher.FetchResult.__init__


def _guarded_init(
    self: Any, tp: TopicPartition, *, assignment: Any, partition_records: Any, backoff: float
) -> None:
    _FETCH_RESULT_INIT(
        self,
        tp,
        assignment=assignment,
        partition_records=_GuardedRecords(tp, assignment, partition_records),
        backoff=backoff,
    )


def shape_problems() -> list[str]:
    """What of aiokafka's fetcher is not as the guard expects it (empty when all is)."""
    problems = []
    params = list(inspect.signature(_FETCH_RESULT_INIT).parameters)
    if params != ["self", "tp", "assignment", "partition_records", "backoff"]:
        problems.append(f"FetchResult.__init__ takes {params}")
    for name in ("has_next", "next_batch", "size_in_bytes"):
        if not callable(getattr(_MEMORY_RECORDS, name, None)):
            problems.append(f"MemoryRecords has no {name}()")
    try:
        response_handling = inspect.getsource(fetcher.Fetcher._proc_fetch_request)
    except (OSError, TypeError, AttributeError) as exc:
        problems.append(f"Fetcher._proc_fetch_request cannot be read ({exc})")
    else:
        for built in ("MemoryRecords(", "FetchResult(", "PartitionRecords("):
            if built not in response_handling:
                problems.append(f"Fetcher._proc_fetch_request no longer builds {built[:-1]}")
    if "next_fetch_offset" not in inspect.getsource(fetcher.PartitionRecords):
        problems.append("PartitionRecords has no next_fetch_offset")
    for name in ("pause", "resume", "paused"):
        if not hasattr(TopicPartitionState, name):
            problems.append(f"TopicPartitionState has no {name}")
    return [f"aiokafka {aiokafka.__version__}: {problem}" for problem in problems]


def install() -> None:
    """Guard every aiokafka consumer of this process (idempotent)."""
    fetcher.MemoryRecords = _HeaderTolerantMemoryRecords
    fetcher.FetchResult.__init__ = _guarded_init
