"""The fetch guard: an unreadable partition ends at its last good record and waits; nothing of it
or of another partition is lost, and a header key that is not UTF-8 is read rather than refused.

These run aiokafka's own fetcher classes (``PartitionRecords``, ``FetchResult``, ``MemoryRecords``
and a real subscription state) over record batches built with aiokafka's own builders, without
a broker.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.consumer import fetcher
from aiokafka.consumer.subscription_state import SubscriptionState
from aiokafka.record.default_records import (
    DefaultRecordBatch,
    DefaultRecordBatchBuilder,
    _DefaultRecordBatchBuilderPy,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common import fetch_guard

TP = TopicPartition("guarded", 0)
LZ4, ZSTD, GZIP, SNAPPY = 3, 4, 1, 2


class _NotUtf8Key(str):
    """A header key that aiokafka's (pure-Python) builder writes as the bytes ff fe: what a Go or
    C producer can send, and no Python client can."""

    def encode(self, *_: Any, **__: Any) -> bytes:
        return b"\xff\xfe"


def _built(
    base: int,
    records: Sequence[tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]]]],
    *,
    compression: int = 0,
    builder: Any = DefaultRecordBatchBuilder,
    step_ms: int = 1,
) -> bytes:
    """A v2 record batch at ``base`` of (key, value, headers) records, built by aiokafka."""
    build = builder(
        magic=2,
        compression_type=compression,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for delta, (key, value, headers) in enumerate(records):
        build.append(
            delta,
            timestamp=1_700_000_000_000 + step_ms * delta,
            key=key,
            value=value,
            headers=list(headers),
        )
    raw = bytearray(build.build())
    raw[0:8] = base.to_bytes(8, "big")  # base offset
    return bytes(raw)


def _batch(
    base: int,
    values: Sequence[bytes | None],
    *,
    headers: Sequence[tuple[str, bytes | None]] = (),
    compression: int = 0,
    builder: Any = DefaultRecordBatchBuilder,
) -> bytes:
    return _built(
        base, [(b"k", v, headers) for v in values], compression=compression, builder=builder
    )


def _values(first: int, count: int) -> list[bytes | None]:
    return [b"event-%d" % offset for offset in range(first, first + count)]


def _corrupt(batch: bytes) -> bytes:
    """The batch with its last byte flipped: the CRC no longer matches."""
    return batch[:-1] + bytes([batch[-1] ^ 0xFF])


@pytest.fixture(autouse=True)
def _guarded() -> Iterator[None]:
    fetch_guard.install()
    fetch_guard.UNREADABLE.clear(TP)
    yield
    fetch_guard.UNREADABLE.clear(TP)


def _assignment(position: int = 0) -> Any:
    state = SubscriptionState()
    state.assign_from_user({TP})
    assignment = state.subscription.assignment
    assignment.state_value(TP).seek(position)
    return assignment


def _fetched(data: bytes, assignment: Any, fetch_offset: int = 0) -> Any:
    """What aiokafka's fetcher builds for one partition of a fetch response."""
    records = fetcher.PartitionRecords(
        TP, fetcher.MemoryRecords(data), [], fetch_offset, None, None, True, "read_uncommitted"
    )
    return fetcher.FetchResult(TP, assignment=assignment, partition_records=records, backoff=0.1)


def test_the_patched_fetcher_still_has_the_shape_the_guard_relies_on() -> None:
    """FetchResult takes (tp, *, assignment, partition_records, backoff) and the fetcher module
    builds MemoryRecords by that name: if aiokafka changes either, this fails before users do."""
    params = inspect.signature(fetch_guard._FETCH_RESULT_INIT).parameters
    assert list(params) == ["self", "tp", "assignment", "partition_records", "backoff"]
    assert fetcher.MemoryRecords is fetch_guard._HeaderTolerantMemoryRecords
    assert fetcher.FetchResult.__init__ is fetch_guard._guarded_init


async def test_readable_batches_are_handed_out_whole_and_nothing_is_noted() -> None:
    """Three batches, one lz4-compressed: every record, in order, and the position after them."""
    assignment = _assignment()
    data = (
        _batch(0, _values(0, 3))
        + _batch(3, _values(3, 2), compression=LZ4)
        + _batch(5, _values(5, 4))
    )
    records = _fetched(data, assignment).getall()
    assert [r.offset for r in records] == list(range(9))
    assert [r.value for r in records] == _values(0, 9)
    assert assignment.state_value(TP).position == 9
    assert fetch_guard.UNREADABLE.get(TP) is None


async def test_a_corrupt_batch_ends_the_partition_at_the_last_good_record_and_pauses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Records before the corrupt batch come out; the position stops on its first offset; the
    error is noted with that offset; the partition is paused, then resumed after RETRY_S."""
    monkeypatch.setattr(fetch_guard, "RETRY_S", 0.05)
    assignment = _assignment()
    data = _batch(0, _values(0, 3)) + _corrupt(_batch(3, _values(3, 2))) + _batch(5, _values(5, 1))
    records = _fetched(data, assignment).getall()
    state = assignment.state_value(TP)
    assert [r.offset for r in records] == [0, 1, 2]
    assert state.position == 3
    unreadable = fetch_guard.UNREADABLE.get(TP)
    assert unreadable is not None
    assert unreadable.offset == 3
    assert "CorruptRecordException" in unreadable.error
    assert state.paused
    await asyncio.sleep(0.2)
    assert not state.paused


async def test_the_same_failure_again_keeps_its_first_time_and_a_good_read_clears_it() -> None:
    """Fetched again at the bad offset: nothing comes out, nothing is raised, and the failure
    keeps the time it was first seen (the watchdog measures from it). Once a record of the
    partition is read, the failure is forgotten."""
    assignment = _assignment(3)
    bad = _corrupt(_batch(3, _values(3, 2)))
    assert _fetched(bad, assignment, fetch_offset=3).getall() == []
    first = fetch_guard.UNREADABLE.get(TP)
    assignment.state_value(TP).resume()
    assert _fetched(bad, assignment, fetch_offset=3).getall() == []
    again = fetch_guard.UNREADABLE.get(TP)
    assert first is not None
    assert again is not None
    assert again.since == first.since
    assignment.state_value(TP).resume()
    healthy = _fetched(_batch(3, _values(3, 2)), assignment, fetch_offset=3).getall()
    assert [r.offset for r in healthy] == [3, 4]
    assert fetch_guard.UNREADABLE.get(TP) is None


async def test_a_compressed_payload_that_does_not_decompress_is_unreadable_not_raised() -> None:
    """A batch marked zstd whose payload is not zstd (the decoder raises its own error type)."""
    good = _batch(0, _values(0, 2), compression=ZSTD)
    header_size = 61
    garbage = good[:header_size] + b"\x00not zstd at all" * 4
    garbage = garbage[:8] + (len(garbage) - 12).to_bytes(4, "big") + garbage[12:]
    assignment = _assignment()
    records = _fetched(_batch(0, _values(0, 1)) + garbage, assignment).getall()
    assert [r.offset for r in records] == [0]
    unreadable = fetch_guard.UNREADABLE.get(TP)
    assert unreadable is not None
    assert unreadable.offset == 1


async def test_getone_stops_at_the_bad_batch_without_raising() -> None:
    """The single-record path (FastStream's non-batch subscribers) behaves the same."""
    assignment = _assignment()
    result = _fetched(_batch(0, _values(0, 1)) + _corrupt(_batch(1, _values(1, 1))), assignment)
    assert result.getone().offset == 0
    assert result.getone() is None
    assert assignment.state_value(TP).position == 1


@pytest.mark.parametrize("compression", [0, GZIP, SNAPPY, LZ4, ZSTD])
async def test_a_header_key_that_is_not_utf8_is_read_with_the_bytes_escaped(
    compression: int,
) -> None:
    """aiokafka's fast decoder raises UnicodeDecodeError on such a key; the guard re-reads the
    batch and every record comes out, its key text holding the bad bytes as surrogates."""
    assignment = _assignment()
    odd = _batch(
        2,
        _values(2, 3),
        headers=[(_NotUtf8Key("x"), b"value"), ("trace", None)],
        compression=compression,
        builder=_DefaultRecordBatchBuilderPy,
    )
    data = _batch(0, _values(0, 2)) + odd + _batch(5, _values(5, 1))
    records = _fetched(data, assignment).getall()
    assert [r.offset for r in records] == list(range(6))
    assert [r.value for r in records] == _values(0, 6)
    assert records[2].headers == (("\udcff\udcfe", b"value"), ("trace", None))
    assert records[2].timestamp == 1_700_000_000_000
    assert records[4].timestamp == 1_700_000_000_002
    with pytest.raises(UnicodeEncodeError):
        records[2].headers[0][0].encode("utf-8")
    assert fetch_guard.UNREADABLE.get(TP) is None


_text = st.text(max_size=20)
_blob = st.one_of(st.none(), st.binary(max_size=60))


@settings(max_examples=60, deadline=None)
@given(
    base=st.integers(min_value=0, max_value=2**40),
    records=st.lists(
        st.tuples(_blob, _blob, st.lists(st.tuples(_text, _blob), max_size=3)),
        min_size=1,
        max_size=8,
    ),
    compression=st.sampled_from([0, GZIP, SNAPPY, LZ4, ZSTD]),
)
def test_the_lenient_decoder_reads_what_the_fast_decoder_reads(
    base: int,
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]],
    compression: int,
) -> None:
    """For batches the fast decoder accepts, the fallback gives the same offsets, timestamps,
    keys, values and headers."""
    raw = _built(base, records, compression=compression, step_ms=7)
    fast = [
        (r.offset, r.timestamp, r.timestamp_type, r.key, r.value, list(r.headers))
        for r in DefaultRecordBatch(raw)
    ]
    lenient = [
        (r.offset, r.timestamp, r.timestamp_type, r.key, r.value, r.headers)
        for r in fetch_guard.lenient_records(raw)
    ]
    assert lenient == fast


# -- through aiokafka's own fetch path -------------------------------------------------------
#
# The tests above hand the guard aiokafka's classes built here; these let aiokafka's ``Fetcher``
# do it all: its background routine builds the fetch request, its response handling builds
# ``MemoryRecords``, ``PartitionRecords`` and ``FetchResult`` by the names the guard replaced,
# and ``fetched_records`` drains them as ``getmany`` does. Should aiokafka stop calling what the
# guard replaced, the corrupt partition raises again (or takes the healthy one down with it)
# and these fail. Only the network is stood in for: one node that leads every partition and
# answers each fetch with the bytes given for that partition and offset.

HEALTHY = TopicPartition("guarded", 1)


class _OneNode:
    """aiokafka's client as its fetcher uses it: a cluster of one node, and ``send``."""

    def __init__(self, logs: dict[TopicPartition, dict[int, bytes]]) -> None:
        self._loop = asyncio.get_running_loop()
        self._metadata_max_age_ms = 300_000
        self._logs = logs
        self.cluster = self
        self.fetched: list[tuple[TopicPartition, int]] = []

    def leader_for_partition(self, _: TopicPartition) -> int:
        return 0

    def broker_metadata(self, _: int) -> object:
        return object()

    def force_metadata_update(self) -> asyncio.Future[bool]:
        done: asyncio.Future[bool] = self._loop.create_future()
        done.set_result(True)
        return done

    async def send(self, _: int, request: Any) -> Any:
        answers: list[tuple[str, list[tuple[Any, ...]]]] = []
        for topic, partitions in request.topics:
            found: list[tuple[Any, ...]] = []
            for partition, offset, _max_bytes in partitions:
                tp = TopicPartition(topic, partition)
                self.fetched.append((tp, offset))
                data = self._logs.get(tp, {}).get(offset, b"")
                found.append((partition, 0, 100, 100, [], data))  # v4: lso, aborted, records
            answers.append((topic, found))
        if not any(data for _, found in answers for *_, data in found):
            await asyncio.sleep(0.05)  # nothing new: the broker holds the fetch for a while
        return _Response(answers)


class _Response:
    API_VERSION = 4

    def __init__(self, topics: list[Any]) -> None:
        self.topics = topics


async def _through_the_fetcher(
    logs: dict[TopicPartition, dict[int, bytes]],
) -> tuple[dict[TopicPartition, list[Any]], SubscriptionState, _OneNode]:
    subscriptions = SubscriptionState()
    subscriptions.assign_from_user(set(logs))
    for tp in logs:
        subscriptions.subscription.assignment.state_value(tp).seek(0)
    client = _OneNode(logs)
    fetch = fetcher.Fetcher(client, subscriptions, fetcher_timeout=0.05)
    try:
        drained: dict[TopicPartition, list[Any]] = {}
        for _ in range(20):  # a partition's records may come in more than one drain
            for tp, records in (await fetch.fetched_records(list(logs), timeout=0.2)).items():
                drained.setdefault(tp, []).extend(records)
            if all(drained.get(tp) for tp in logs):
                break
        return drained, subscriptions, client
    finally:
        await fetch.close()


async def test_through_aiokafka_s_fetcher_a_corrupt_partition_neither_raises_nor_drops_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fetch_guard, "RETRY_S", 30.0)
    fetch_guard.UNREADABLE.clear(HEALTHY)
    logs = {
        TP: {0: _batch(0, _values(0, 3)) + _corrupt(_batch(3, _values(3, 2)))},
        HEALTHY: {0: _batch(0, _values(0, 4), compression=GZIP)},
    }
    drained, subscriptions, client = await _through_the_fetcher(logs)
    assert [r.offset for r in drained[TP]] == [0, 1, 2]
    assert [r.value for r in drained[HEALTHY]] == _values(0, 4)
    unreadable = fetch_guard.UNREADABLE.get(TP)
    assert unreadable is not None
    assert unreadable.offset == 3
    assert "CorruptRecordException" in unreadable.error
    state = subscriptions.subscription.assignment.state_value(TP)
    assert (state.position, state.paused) == (3, True)
    assert fetch_guard.UNREADABLE.get(HEALTHY) is None
    assert (TP, 0) in client.fetched


async def test_through_aiokafka_s_fetcher_a_header_key_that_is_not_utf8_is_read() -> None:
    headers = [(_NotUtf8Key("x"), b"v")]
    logs = {
        TP: {0: _batch(0, _values(0, 2), headers=headers, builder=_DefaultRecordBatchBuilderPy)}
    }
    drained, _, _ = await _through_the_fetcher(logs)
    assert [r.value for r in drained[TP]] == _values(0, 2)
    key = drained[TP][0].headers[0][0]
    assert key.encode("utf-8", "surrogateescape") == b"\xff\xfe"
    assert fetch_guard.UNREADABLE.get(TP) is None


# -- one pause flag, two users ---------------------------------------------------------------


def _consumer_reading(*partitions: TopicPartition) -> Any:
    """An aiokafka consumer (not started: no broker needed) with ``partitions`` assigned."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    consumer.assign(list(partitions))
    for tp in partitions:
        consumer._subscription.subscription.assignment.state_value(tp).seek(0)
    return consumer


def _rest_by_the_guard(consumer: Any) -> None:
    assignment = consumer._subscription.subscription.assignment
    bad = _batch(0, _values(0, 1)) + _corrupt(_batch(1, _values(1, 2)))
    assert [r.offset for r in _fetched(bad, assignment).getall()] == [0]


async def test_a_rest_that_ends_does_not_resume_a_partition_read_last_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guard rests the partition; read_last then holds it (pausing what it is not reading
    back); the rest ends: the partition stays paused until read_last releases it."""
    monkeypatch.setattr(fetch_guard, "RETRY_S", 0.05)
    consumer = _consumer_reading(TP)
    _rest_by_the_guard(consumer)
    assert TP in consumer.paused()
    fetch_guard.hold(consumer, [TP])
    await asyncio.sleep(0.2)  # the rest is over
    assert TP in consumer.paused(), "the guard resumed a partition read_last holds"
    fetch_guard.release(consumer, [TP])
    assert TP not in consumer.paused()


async def test_read_last_releasing_a_partition_does_not_cut_the_guard_s_rest_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guard rests the partition; read_last holds it and releases it before the rest is
    over: it stays paused until the rest ends, then is fetched again."""
    monkeypatch.setattr(fetch_guard, "RETRY_S", 0.1)
    consumer = _consumer_reading(TP)
    _rest_by_the_guard(consumer)
    fetch_guard.hold(consumer, [TP])
    fetch_guard.release(consumer, [TP])
    assert TP in consumer.paused(), "read_last ended the guard's rest"
    await asyncio.sleep(0.3)
    assert TP not in consumer.paused()


def test_the_fetcher_of_this_aiokafka_has_the_shape_the_guard_checks_at_start_up() -> None:
    assert fetch_guard.shape_problems() == []
