"""What compaction leaves of the canonical topic folds to the same scorecard as the whole log.

Compaction keeps, per partition, the record with the highest offset for each key. Here the
canonical log is made by ingest's own triage and record construction, in arrival order (late,
stale, duplicate and re-sent versions included), partitioned as the publisher partitions it;
then compacted as Kafka would; then both are folded by metrics' fold and compared. The control
cases show why the key carries the version: keyed by the natural key alone, the three cases
worked out by hand in the issue come out wrong after compaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.codec import encode_event
from contracts.events import event_adapter
from contracts.keys import AnyEvent, entity_of
from contracts.records import KpiSnapshot
from services.alerts.board import IndicatorBoard
from services.common.partitioning import partition_for_key
from services.ingest.dedup import DedupWindow
from services.ingest.outcomes import canonical_record, publisher_header
from services.ingest.triage import Canonical, SourceRecord, triage
from services.metrics.fold import PartitionState, apply
from services.metrics.snapshots import snapshot_key
from tests.unit.test_alerts_builders import JOBS, full_roadmap, snapshot, utc
from tests.unit.test_metrics_builders import LABELS, hiring, milestone
from tests.unit.test_metrics_properties import AT, PLAN, deliveries, observed, tallies

PARTITIONS = 3
T0 = utc(2026, 3, 1)
Log = dict[int, list[tuple[bytes, bytes]]]
"""Per partition, (key, value) in offset order."""


def canonical_log(arrivals: Iterable[AnyEvent], *, window: int = 10_000) -> Log:
    """The canonical records ingest publishes for events arriving in this order (a dedup window
    of ``window`` ids: a small one re-publishes re-sent events, as after a restart)."""
    dedup = DedupWindow(window)
    log: Log = defaultdict(list)
    for offset, event in enumerate(arrivals):
        pending = dedup.pending()
        source = SourceRecord("upstream", 0, offset, None, encode_event(event), None)
        outcome = triage(source, pending)
        pending.commit()
        if isinstance(outcome, Canonical):
            record = canonical_record(
                outcome, topic="roadmap.events.v1", publisher=publisher_header("kafka")
            )
            assert record.key is not None
            assert record.partition_key is not None
            partition = partition_for_key(record.partition_key, PARTITIONS)
            log[partition].append((record.key, record.value))
    return log


def compacted(log: Log, key: Callable[[bytes], bytes] = lambda k: k) -> Log:
    """What compaction leaves: per partition, the last record of each ``key(record key)``."""
    kept: Log = {}
    for partition, records in log.items():
        last = {key(k): offset for offset, (k, _) in enumerate(records)}
        kept[partition] = [records[offset] for offset in sorted(last.values())]
    return kept


def fold_log(log: Log) -> dict[int, PartitionState]:
    states = {}
    for partition, records in log.items():
        state = PartitionState(PLAN, LABELS)
        for _, value in records:
            apply(state, event_adapter.validate_json(value))
        states[partition] = state
    return states


def _scorecard(log: Log) -> tuple[object, object]:
    states = fold_log(log)
    return observed(PLAN, states, AT), {p: tallies(s) for p, s in sorted(states.items())}


@settings(max_examples=300, deadline=None)
@given(deliveries(), st.sampled_from([10_000, 2]))
def test_the_compacted_log_folds_to_the_scorecard_of_the_whole_log(
    case: tuple[list[AnyEvent], list[AnyEvent]], window: int
) -> None:
    """Any arrival order of several versions per key, with re-deliveries (dropped by the dedup
    window, or re-published when the window is too small to remember them)."""
    _, arrivals = case
    log = canonical_log(arrivals, window=window)
    assert _scorecard(compacted(log)) == _scorecard(log)


def _jv_operational(log: Log) -> object:
    return observed(PLAN, fold_log(log), AT)["joint_ventures_operational"]


def _jobs(log: Log) -> object:
    return observed(PLAN, fold_log(log), AT)["jobs_created"]


CASES: dict[str, tuple[Sequence[AnyEvent], Callable[[Log], object], int]] = {
    # cancelled, then an 'operational' milestone dated earlier arrives late
    "late operational after cancelled": (
        [
            milestone(
                "m-2",
                "JV-1",
                stage="cancelled",
                joint_venture=True,
                occurred_at="2025-06-01T00:00:00Z",
            ),
            milestone(
                "m-1",
                "JV-1",
                stage="operational",
                joint_venture=True,
                occurred_at="2025-05-01T00:00:00Z",
            ),
        ],
        _jv_operational,
        10_000,
    ),
    # 4 corrected to 6, then a stale version reading 500 arrives
    "stale 500 after a correction to 6": (
        [
            hiring("h-1", "JV-1", "2025-03", 4, occurred_at="2025-04-01T00:00:00Z"),
            hiring("h-2", "JV-1", "2025-03", 6, occurred_at="2025-04-02T00:00:00Z"),
            hiring("h-0", "JV-1", "2025-03", 500, occurred_at="2025-03-31T00:00:00Z"),
        ],
        _jobs,
        10_000,
    ),
    # 'agreed' re-sent by a second producer after 'operational' (beyond the dedup window)
    "agreed re-sent after operational": (
        [
            milestone(
                "m-1",
                "JV-2",
                stage="agreed",
                joint_venture=True,
                occurred_at="2025-05-01T00:00:00Z",
            ),
            milestone(
                "m-2",
                "JV-2",
                stage="operational",
                joint_venture=True,
                occurred_at="2025-06-01T00:00:00Z",
            ),
            milestone(
                "m-1",
                "JV-2",
                stage="agreed",
                joint_venture=True,
                occurred_at="2025-05-01T00:00:00Z",
            ),
        ],
        _jv_operational,
        1,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_cases_worked_out_by_hand_survive_compaction(name: str) -> None:
    """Keyed by natural key and version: right after compaction. Keyed by the natural key alone
    (the control): compaction keeps the stale version and the figure changes."""
    arrivals, figure, window = CASES[name]
    log = canonical_log(arrivals, window=window)
    whole = figure(log)
    assert figure(compacted(log)) == whole
    assert figure(compacted(log, key=entity_of)) != whole


def test_the_hand_cases_give_the_figures_the_issue_expects() -> None:
    """The whole log's figures: the cancelled project is not operational, the report reads 6,
    the re-sent 'agreed' does not undo 'operational'."""
    (late, stale, resent) = (canonical_log(a, window=w) for a, _, w in CASES.values())
    assert _jv_operational(late)[0] == 0  # type: ignore[index]
    assert _jobs(stale)[0] == 6  # type: ignore[index]
    assert _jv_operational(resent)[0] == 1  # type: ignore[index]


# -- the KPI topic ----------------------------------------------------------------------------

_PARTITION_SETS = [(0, 1, 2), (0, 1), (2,), (0,), (1, 2)]
"""What metrics replicas own over a few rebalances (one replica; two; three; back to two)."""


@st.composite
def snapshot_streams(draw: st.DrawFn) -> list[KpiSnapshot]:
    """Snapshots of one indicator from replicas owning these partition sets, each replica's own
    in time order (what metrics publishes), interleaved in any way across replicas. A partition
    set has one owner at a time (the consumer group's assignment), so one writer per key."""
    lanes = []
    owned = st.lists(st.sampled_from(_PARTITION_SETS), min_size=1, max_size=5, unique=True)
    for partitions in draw(owned):
        times = sorted(draw(st.lists(st.integers(0, 50), min_size=1, max_size=4)))
        lanes.append(
            [
                snapshot(
                    JOBS,
                    {p: {"sum": draw(st.integers(0, 900))} for p in partitions},
                    count=3,
                    evaluated_at=T0 + timedelta(minutes=t),
                )
                for t in times
            ]
        )
    order = draw(st.permutations([i for i, lane in enumerate(lanes) for _ in lane]))
    cursors = [0] * len(lanes)
    stream = []
    for lane in order:
        stream.append(lanes[lane][cursors[lane]])
        cursors[lane] += 1
    return stream


def _board(snapshots: Sequence[KpiSnapshot]) -> object:
    board = IndicatorBoard(full_roadmap())
    for s in snapshots:
        board.add(s)
    return board.view(JOBS)


@settings(max_examples=300, deadline=None)
@given(snapshot_streams())
def test_the_compacted_kpi_topic_gives_alerts_the_same_board(stream: list[KpiSnapshot]) -> None:
    """The KPI topic is compacted by ``snapshot_key`` (indicator and partition set): what it
    leaves gives the alerts service's board the same view as every snapshot in order."""
    by_key = {snapshot_key(s): offset for offset, s in enumerate(stream)}
    survivors = [stream[offset] for offset in sorted(by_key.values())]
    assert _board(survivors) == _board(stream)
