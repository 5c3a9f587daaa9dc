"""The progress tracker: stalled means records to read and no move forward for ``stall_after``."""

from __future__ import annotations

from services.common.progress import (
    PartitionProgress,
    ProgressTracker,
    Reading,
    Stall,
    describe,
    where,
)

A, B = ("roadmap.trade.shipments", 1), ("roadmap.trade.shipments", 2)


def _at(tracker: ProgressTracker, now: float, **readings: tuple[int, int] | None) -> list[str]:
    """Observe ``a``/``b`` readings as (position, end); return the stalled partitions' names."""
    keyed = {
        {"a": A, "b": B}[name]: None if value is None else Reading(*value)
        for name, value in readings.items()
    }
    report = tracker.observe(now, keyed)
    return [f"{p.topic}:{p.partition}" for p in report.stalled]


def test_a_partition_with_records_and_no_move_stalls_after_the_limit() -> None:
    tracker = ProgressTracker(60)
    assert _at(tracker, 0, a=(42, 45)) == []
    assert _at(tracker, 59.9, a=(42, 45)) == []
    report = tracker.observe(60, {A: Reading(42, 47)})
    assert [p.stalled for p in report.partitions] == [True]
    assert report.began == report.partitions
    progress = report.partitions[0]
    assert (progress.position, progress.end, progress.lag, progress.idle_s) == (42, 47, 5, 60)
    again = tracker.observe(90, {A: Reading(42, 47)})
    assert again.began == ()  # the episode is reported once
    assert again.partitions[0].stalled


def test_moving_forward_ends_the_stall_and_restarts_the_clock() -> None:
    tracker = ProgressTracker(10)
    _at(tracker, 0, a=(5, 9))
    assert _at(tracker, 10, a=(5, 9)) == ["roadmap.trade.shipments:1"]
    report = tracker.observe(11, {A: Reading(6, 9)})
    assert report.ended == (A,)
    assert not report.partitions[0].stalled
    assert _at(tracker, 20, a=(6, 9)) == []
    assert _at(tracker, 21, a=(6, 9)) == ["roadmap.trade.shipments:1"]


def test_caught_up_is_never_stalled_and_the_clock_starts_when_records_arrive() -> None:
    """An hour idle and caught up, then a record arrives: stalled only stall_after after the
    partition was last seen caught up (the record came some time after that reading)."""
    tracker = ProgressTracker(60)
    _at(tracker, 0, a=(10, 10))
    assert _at(tracker, 3_600, a=(10, 10)) == []
    assert _at(tracker, 3_601, a=(10, 11)) == []
    assert _at(tracker, 3_659, a=(10, 11)) == []
    assert _at(tracker, 3_660, a=(10, 11)) == ["roadmap.trade.shipments:1"]


def test_re_reading_the_same_batch_is_not_progress() -> None:
    """Ingest rewinds to a batch's start after a failed publish and reads it again: positions go
    100, 200, 100, 200, ... which must not look like progress."""
    tracker = ProgressTracker(30)
    positions = [100, 200, 100, 200, 100, 200, 100]
    stalled = [_at(tracker, 10 * i, a=(p, 500)) for i, p in enumerate(positions)]
    assert stalled[-1] == ["roadmap.trade.shipments:1"]
    assert stalled[:4] == [[], [], [], []]


def test_restart_forgets_a_partition_being_replayed_from_the_start() -> None:
    tracker = ProgressTracker(30)
    _at(tracker, 0, a=(5_000, 6_000))
    tracker.restart([A])
    assert _at(tracker, 1, a=(0, 6_000)) == []
    assert _at(tracker, 20, a=(2_000, 6_000)) == []
    assert _at(tracker, 40, a=(4_000, 6_000)) == []


def test_committed_offsets_that_move_back_are_a_new_start() -> None:
    """For group offsets (rewind_is_restart): a replay or an operator's reset moves them back."""
    plain, committed = ProgressTracker(30), ProgressTracker(30, rewind_is_restart=True)
    for tracker in (plain, committed):
        _at(tracker, 0, a=(5_000, 6_000))
        _at(tracker, 10, a=(2_000, 6_000))
    assert _at(plain, 31, a=(2_000, 6_000)) == ["roadmap.trade.shipments:1"]
    assert _at(committed, 31, a=(2_000, 6_000)) == []


def test_an_unknown_reading_keeps_the_partition_and_its_clock() -> None:
    tracker = ProgressTracker(30)
    _at(tracker, 0, a=(1, 4))
    assert _at(tracker, 31, a=None) == ["roadmap.trade.shipments:1"]
    assert _at(tracker, 32, b=None) == []  # a: no longer read; b: nothing known yet


def test_a_partition_no_longer_read_ends_its_episode() -> None:
    tracker = ProgressTracker(5)
    _at(tracker, 0, a=(1, 4), b=(0, 0))
    assert _at(tracker, 6, a=(1, 4), b=(0, 0)) == ["roadmap.trade.shipments:1"]
    report = tracker.observe(7, {B: Reading(0, 0)})
    assert report.ended == (A,)
    assert [p.partition for p in report.partitions] == [2]


def test_partitions_are_judged_apart() -> None:
    tracker = ProgressTracker(10)
    _at(tracker, 0, a=(0, 5), b=(0, 5))
    assert _at(tracker, 10, a=(0, 9), b=(5, 9)) == ["roadmap.trade.shipments:1"]


def test_the_wording_names_topic_partition_offset_lag_and_idle_time() -> None:
    progress = PartitionProgress("roadmap.trade.shipments", 1, 42, 1_059, 75.4, True)
    assert (
        where(progress) == "roadmap.trade.shipments partition 1 at offset 42, 1,017 records behind"
    )
    assert describe(progress).endswith(", no progress for 75 s")


def test_an_open_transaction_holds_the_partition_and_the_stall_says_so() -> None:
    # Read up to the last stable offset 40; records 40..46 wait behind an open transaction.
    tracker = ProgressTracker(10)
    tracker.observe(0, {A: Reading(40, 47, stable=40)})
    held = tracker.observe(10, {A: Reading(40, 47, stable=40)}).partitions[0]
    assert (held.stalled, held.held_by_transaction, held.lag) == (True, True, 7)
    stall = Stall("ingest (group roadmap-ingest)", held, "none seen")
    assert stall.reason.startswith(
        "held by an open transaction: last stable offset 40 below high-water mark 47"
    )


def test_records_below_the_last_stable_offset_are_the_consumer_s_own_stall() -> None:
    tracker = ProgressTracker(10)
    tracker.observe(0, {A: Reading(30, 47, stable=40)})
    behind = tracker.observe(10, {A: Reading(30, 47, stable=40)}).partitions[0]
    assert (behind.stalled, behind.held_by_transaction) == (True, False)
    assert Stall("ingest", behind, "none seen").reason == "last error: none seen"


def test_no_transaction_open_or_no_stable_offset_known_is_never_held() -> None:
    for reading in (Reading(47, 47, stable=47), Reading(40, 47), Reading(40, 47, stable=None)):
        progress = ProgressTracker(10).observe(0, {A: reading}).partitions[0]
        assert not progress.held_by_transaction, reading
