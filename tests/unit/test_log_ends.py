"""Where a partition's log ended: the end offset asked for, raised by high-water marks until the
position first reaches it, then done for good."""

from __future__ import annotations

import pytest

from services.common.log_ends import LogEnds

pytestmark = pytest.mark.unit


class Marks:
    """The high-water marks fetches have reported so far, by partition."""

    def __init__(self) -> None:
        self.now: dict[int, int | None] = {}

    def __call__(self, partition: int) -> int | None:
        return self.now.get(partition)


def test_a_low_end_offset_is_raised_by_the_fetches_high_water_marks() -> None:
    """The embedded broker's end offset (2) and then an empty fetch's low mark (2) are both
    raised by the true mark (5,001): the partition is read only at 5,001."""
    marks = Marks()
    ends = LogEnds(marks)
    ends.expect(0, 2)
    assert ends.left(0, 0) is None  # no fetch answered: not known
    marks.now[0] = 2
    assert ends.left(0, 0) == 2
    marks.now[0] = 5_001
    assert ends.left(0, 2) == 4_999
    marks.now[0] = 2  # a later low mark does not lower the target
    assert ends.left(0, 4_000) == 1_001
    assert ends.target(0) == 5_001
    assert ends.left(0, 5_001) == 0


def test_once_reached_new_records_do_not_put_it_back() -> None:
    marks = Marks()
    ends = LogEnds(marks)
    ends.expect(0, 10)
    marks.now[0] = 10
    assert ends.left(0, 10) == 0
    marks.now[0] = 500  # a steady stream goes on
    assert ends.left(0, 10) == 0
    assert ends.target(0) == 10  # later records are not part of the replay


def test_an_empty_partition_is_read_at_once_and_exact_targets_are_never_raised() -> None:
    marks = Marks()
    ends = LogEnds(marks)
    ends.expect(0, 0)
    ends.expect(1, 7, exact=True)
    marks.now[1] = 100
    assert ends.left(0, 0) == 0
    assert ends.left(1, 3) == 4
    assert ends.left(1, 7) == 0


def test_expecting_again_or_forgetting_starts_over() -> None:
    marks = Marks()
    ends = LogEnds(marks)
    ends.expect(0, 5)
    marks.now[0] = 5
    assert ends.left(0, 5) == 0
    ends.expect(0, 9)  # assigned afresh: replay again from the start
    marks.now[0] = 9
    assert ends.left(0, 0) == 9
    ends.forget(0)
    assert ends.target(0) == 0
