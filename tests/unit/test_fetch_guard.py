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
