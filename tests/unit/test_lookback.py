"""Reading the last N records of partitions whose offsets are sparse (compacted): the planned
ranges, run against a simulated compacted partition, collect the last N surviving records."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.lookback import LookBack, Span


def _collect(
    survivors: dict[str, list[int]], ends: dict[str, int], want: int
) -> tuple[dict[str, list[int]], int]:
    """Run the plan as the reader does: each round, every record of each planned span that
    survives (a fetch also returns records past the span: the plan ignores them)."""
    starts = dict.fromkeys(survivors, 0)
    plan = LookBack(want, starts, ends)
    got: dict[str, list[int]] = {p: [] for p in survivors}
    rounds = 0
    spans = dict(plan.next)
    while spans:
        rounds += 1
        for partition, span in spans.items():
            fetched = [o for o in survivors[partition] if o >= span.lower]  # past upper too
            plan.read(partition, fetched)
            got[partition] += [o for o in fetched if o < span.upper]
        spans = plan.advance()
    return got, rounds


def test_a_dense_partition_is_read_in_one_round_from_end_minus_n() -> None:
    plan = LookBack(100, {"p": 0}, {"p": 1_000})
    assert plan.next == {"p": Span(900, 1_000)}
    assert plan.read("p", range(900, 1_005)) == 100  # 5 past the end are not counted
    assert plan.advance() == {}


def test_a_short_partition_is_read_whole_and_an_empty_one_not_at_all() -> None:
    plan = LookBack(100, {"short": 0, "empty": 7}, {"short": 40, "empty": 7})
    assert plan.next == {"short": Span(0, 40)}
    plan.read("short", range(40))
    assert plan.advance() == {}


def test_a_compacted_partition_is_read_further_back_twice_as_wide_each_round() -> None:
    """1 record in 10 survived compaction: the last 100 records span about 1,000 offsets."""
    survivors = {"p": list(range(0, 10_000, 10))}
    got, rounds = _collect(survivors, {"p": 10_000}, 100)
    assert sorted(got["p"])[-100:] == survivors["p"][-100:]
    assert len(got["p"]) == 150
    assert rounds == 4  # 100 offsets (10 records), then 200, 400, 800 further back


def test_a_partition_with_fewer_records_than_wanted_is_read_to_its_first_offset() -> None:
    survivors = {"p": [3, 500, 4_000]}
    got, _ = _collect(survivors, {"p": 5_000}, 10)
    assert sorted(got["p"]) == [3, 500, 4_000]


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 3_000), min_size=1, max_size=4),
    keep=st.floats(0.01, 1.0),
    want=st.integers(1, 400),
    seed=st.integers(0, 2**32),
)
def test_the_last_n_survivors_of_every_partition_are_read_once(
    sizes: list[int], keep: float, want: int, seed: int
) -> None:
    rng = random.Random(seed)
    survivors = {
        f"p{i}": sorted(o for o in range(size) if rng.random() < keep)
        for i, size in enumerate(sizes)
    }
    ends = {f"p{i}": size for i, size in enumerate(sizes)}
    got, _ = _collect(survivors, ends, want)
    for partition, offsets in survivors.items():
        read = got[partition]
        assert len(read) == len(set(read)), "an offset read twice"
        assert set(offsets[-want:]) <= set(read)
