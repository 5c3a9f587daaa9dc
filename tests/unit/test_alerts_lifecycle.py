"""Alert lifecycle on hand-computed trajectories: pending, firing, repeats, damping, recovery.

Scenario clock: ``at(m, s)`` is R0 + m minutes s seconds on the roadmap clock and W0 + the same
on the wall clock (R0 = 2028-10-01T12:00Z, where jobs_created is expected at exactly 1,350;
W0 is a far-away wall time, so a mix-up of the clocks shows). The lifecycle is: for 10m,
keep_firing_for 30m, repeat_interval 1m (DeadlineMissed and Stale: for 0s, keep 0s;
PipelineRejecting: for 5m, keep 10m). 1,120 jobs is behind (bound 1,215); 1,300 is not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.alerts_file import Lifecycle, PipelineRule, load_alerts_file
from contracts.records import AlertName, AlertState, AlertTransition
from contracts.roadmap import RoadmapFile
from services.alerts.board import IndicatorBoard
from services.alerts.conditions import Condition, conditions_at, pipeline_condition
from services.alerts.lifecycle import AlertBook, Moment, dedup_key, evaluate
from services.alerts.pipeline_window import PipelineFigures
from tests.unit.test_alerts_builders import (
    ENDS,
    JOBS,
    R0,
    ROADMAP_ID,
    SCENARIO_LIFECYCLE,
    W0,
    jobs_board,
    jobs_roadmap,
    key_of,
    lifecycle,
    set_jobs,
    step,
    utc,
)

ALERTS_PATH = Path(__file__).parents[2] / "deploy" / "alerts.yaml"
LIFE = lifecycle(**SCENARIO_LIFECYCLE)
BEHIND = key_of(AlertName.TARGET_BEHIND)
FRESH = utc(2028, 9, 30)


def at(m: int = 0, s: int = 0) -> Moment:
    d = timedelta(minutes=m, seconds=s)
    return Moment(R0 + d, W0 + d)


def wall(m: int = 0, s: int = 0) -> datetime:
    return W0 + timedelta(minutes=m, seconds=s)


def roadmap_time(m: int = 0, s: int = 0) -> datetime:
    return R0 + timedelta(minutes=m, seconds=s)


class Scenario:
    """A roadmap, a board and a book driven step by step; every record is kept."""

    def __init__(self, jobs: int = 1120, life: Lifecycle = LIFE) -> None:
        self.roadmap: RoadmapFile = jobs_roadmap()
        self.board: IndicatorBoard = jobs_board(self.roadmap, jobs, R0, FRESH)
        self.book = AlertBook()
        self.life = life
        self.published: list[AlertTransition] = []

    def jobs(self, total: int, when: Moment) -> None:
        set_jobs(self.board, total, when.roadmap, FRESH)

    def step(self, when: Moment) -> list[AlertTransition]:
        records = step(self.book, self.roadmap, self.board, when, self.life)
        self.published += records
        return records


def _states(records: list[AlertTransition]) -> list[tuple[AlertState, int]]:
    return [(r.state, r.repeat) for r in records]


# -- pending -> firing -> repeats ------------------------------------------------------------


def test_pending_first_then_firing_exactly_when_for_has_passed() -> None:
    """Behind at R0: pending (since R0, started and at W0). At 9m59s nothing; at 10m00s firing,
    same episode (since, started_at, dedup_key), sent at the wall time."""
    run = Scenario()
    (pending,) = run.step(at(0))
    assert pending.state is AlertState.PENDING
    assert pending.alertname is AlertName.TARGET_BEHIND
    assert (pending.since, pending.started_at, pending.at) == (R0, W0, W0)
    assert pending.repeat == 0
    assert pending.previous_at is None
    assert pending.annotations["since"] == R0.isoformat()
    assert pending.annotations["description"].startswith(
        "Jobs created by joint industrial projects: 1,120 of 1,800 jobs (62%); expected 1,350"
    )
    assert run.step(at(9, 59)) == []
    (firing,) = run.step(at(10))
    assert firing.state is AlertState.FIRING
    assert (firing.since, firing.started_at, firing.at) == (R0, W0, wall(10))
    assert (firing.repeat, firing.previous_at) == (0, None)
    assert firing.dedup_key == pending.dedup_key
    assert firing.dedup_key == dedup_key(BEHIND, R0, W0)


def test_repeats_every_repeat_interval_of_wall_time() -> None:
    """Firing at 10m: nothing at 10m59s; repeat 1 at 11m (previous_at 10m); repeat 2 at 12m
    (previous_at 11m); an evaluation 30 s later sends nothing."""
    run = Scenario()
    run.step(at(0))
    run.step(at(10))
    assert run.step(at(10, 59)) == []
    (first,) = run.step(at(11))
    assert (first.state, first.repeat, first.previous_at, first.at) == (
        AlertState.FIRING,
        1,
        wall(10),
        wall(11),
    )
    assert run.step(at(11, 30)) == []
    (second,) = run.step(at(12))
    assert (second.repeat, second.previous_at) == (2, wall(11))
    assert {r.dedup_key for r in run.published} == {first.dedup_key}


def test_for_runs_on_the_roadmap_clock_and_repeats_on_the_wall_clock() -> None:
    """Roadmap +9m with wall +1h: still pending. Roadmap +10m with wall +1h0m1s: firing. Then a
    day of roadmap time with 59 s of wall time: no repeat; at 60 s of wall time: repeat 1."""
    run = Scenario()
    run.step(Moment(R0, W0))
    assert run.step(Moment(R0 + timedelta(minutes=9), W0 + timedelta(hours=1))) == []
    fired_at = W0 + timedelta(hours=1, seconds=1)
    (firing,) = run.step(Moment(R0 + timedelta(minutes=10), fired_at))
    assert firing.state is AlertState.FIRING
    later = R0 + timedelta(days=1)
    assert run.step(Moment(later, fired_at + timedelta(seconds=59))) == []
    (repeat,) = run.step(Moment(later, fired_at + timedelta(seconds=60)))
    assert (repeat.repeat, repeat.previous_at) == (1, fired_at)


def test_repeat_carries_the_current_figures() -> None:
    """A repeat is sent with the figures that hold now: 1,000 jobs is 350 behind (26%)."""
    run = Scenario()
    run.step(at(0))
    run.step(at(10))
    run.jobs(1000, at(11))
    (repeat,) = run.step(at(11))
    assert repeat.repeat == 1
    assert repeat.annotations["summary"] == (
        "Jobs created by joint industrial projects: 350 behind the trajectory (26%)"
    )
    assert repeat.annotations["actual"] == "1000"


# -- pending cleared, resolved with damping --------------------------------------------------


def test_pending_cleared_before_for_becomes_inactive() -> None:
    """Behind at R0, back to 1,300 at 5m (within tolerance): inactive, same dedup key; nothing
    more afterwards; nothing is ever firing."""
    run = Scenario()
    (pending,) = run.step(at(0))
    run.jobs(1300, at(5))
    (inactive,) = run.step(at(5))
    assert inactive.state is AlertState.INACTIVE
    assert inactive.dedup_key == pending.dedup_key
    assert (inactive.since, inactive.at) == (R0, wall(5))
    assert run.step(at(20)) == []
    assert AlertState.FIRING not in {r.state for r in run.published}


def test_resolves_only_after_staying_clear_for_keep_firing_for() -> None:
    """Firing from 10m; clear from 12m30s (1,300 jobs). The 30 minutes of damping end at
    42m30s: at 42m29s a repeat is still sent (firing), at 42m30s it is resolved, with
    resolved_at on the roadmap clock and the episode's dedup key."""
    run = Scenario()
    run.step(at(0))
    (firing,) = run.step(at(10))
    run.jobs(1300, at(12, 30))
    evaluation = evaluate(run.book, _holding(run, at(12, 30)), at(12, 30), LIFE)
    assert _states(evaluation.records) == [(AlertState.FIRING, 1)]  # wall +2m30s since 10m
    assert evaluation.clearing == {BEHIND: roadmap_time(12, 30)}
    run.book.settle(evaluation)
    assert run.book.clearing == {BEHIND: roadmap_time(12, 30)}
    assert _states(run.step(at(42, 29))) == [(AlertState.FIRING, 2)]
    (resolved,) = run.step(at(42, 30))
    assert resolved.state is AlertState.RESOLVED
    assert resolved.at == wall(42, 30)
    assert resolved.annotations["resolved_at"] == roadmap_time(42, 30).isoformat()
    assert resolved.dedup_key == firing.dedup_key
    assert resolved.since == R0
    assert run.book.clearing == {}
    assert run.step(at(50)) == []


def test_a_flap_back_inside_keep_firing_for_keeps_it_firing() -> None:
    """Clear at 12m30s, behind again at 20m, clear again at 25m. 42m30s (30 min after the first
    clearing) does not resolve: the damping restarted at 25m and ends at 55m. No resolved record
    is written before then, and the whole run is one episode."""
    run = Scenario()
    run.step(at(0))
    run.step(at(10))
    run.jobs(1300, at(12, 30))
    run.step(at(12, 30))
    run.jobs(1120, at(20))
    evaluation = evaluate(run.book, _holding(run, at(20)), at(20), LIFE)
    assert evaluation.clearing == {}
    run.book.settle(evaluation)
    run.jobs(1300, at(25))
    run.step(at(25))
    assert run.book.clearing == {BEHIND: roadmap_time(25)}
    assert _states(run.step(at(42, 30))) == [(AlertState.FIRING, 4)]
    assert _states(run.step(at(54, 59))) == [(AlertState.FIRING, 5)]
    assert AlertState.RESOLVED not in {r.state for r in run.published}
    (resolved,) = run.step(at(55))
    assert resolved.state is AlertState.RESOLVED
    assert len({r.dedup_key for r in run.published}) == 1


def test_next_episode_gets_a_new_dedup_key() -> None:
    """After resolving, behind again at 60m: a new pending with since = 60m and a different
    dedup key; clearing it at 61m gives inactive with that new key."""
    run = Scenario(life=lifecycle(defaults={"for": "10m", "keep_firing_for": "0s"}))
    run.step(at(0))
    (firing,) = run.step(at(10))
    run.jobs(1300, at(11))
    (resolved,) = run.step(at(11))  # keep_firing_for 0: resolved at once
    assert resolved.state is AlertState.RESOLVED
    run.jobs(1120, at(60))
    (pending,) = run.step(at(60))
    assert pending.state is AlertState.PENDING
    assert (pending.since, pending.started_at) == (roadmap_time(60), wall(60))
    assert pending.dedup_key != firing.dedup_key
    run.jobs(1300, at(61))
    (inactive,) = run.step(at(61))
    assert (inactive.state, inactive.dedup_key) == (AlertState.INACTIVE, pending.dedup_key)


def _holding(run: Scenario, when: Moment) -> dict[str, Condition]:
    return conditions_at(
        run.roadmap, run.board.views(), when.roadmap, rule=PipelineRule(), pipeline=None
    )


# -- deadline, staleness, pipeline -----------------------------------------------------------


def test_deadline_missed_fires_at_once_after_the_deadline() -> None:
    """With the shipped lifecycle (DeadlineMissed: for 0s), 1,500 jobs at 2030-01-01T00:00Z
    fires at once (no pending); the previous second it would only be pending TargetBehind."""
    life = load_alerts_file(ALERTS_PATH).lifecycle
    roadmap = jobs_roadmap()
    board = jobs_board(roadmap, 1500, ENDS - timedelta(days=1), utc(2029, 12, 20))
    before = step(AlertBook(), roadmap, board, Moment(ENDS - timedelta(seconds=1), W0), life)
    assert [(r.alertname, r.state) for r in before] == [
        (AlertName.TARGET_BEHIND, AlertState.PENDING)
    ]
    after = step(AlertBook(), roadmap, board, Moment(ENDS, W0), life)
    assert [(r.alertname, r.state, r.repeat) for r in after] == [
        (AlertName.DEADLINE_MISSED, AlertState.FIRING, 0)
    ]
    assert after[0].since == ENDS


def test_stale_without_data_fires_at_once_and_resolves_when_data_comes() -> None:
    """No data at 2025-02-15T00:00:01Z (45 days + 1 s after the start): Stale fires at once
    (for 0s). A snapshot with an event of 2025-02-14 arrives: clear, resolved at once
    (keep_firing_for 0s)."""
    roadmap = jobs_roadmap()
    board = IndicatorBoard(roadmap)
    book = AlertBook()
    t = utc(2025, 2, 15, 0, 0, 1)
    (stale,) = step(book, roadmap, board, Moment(t, W0), LIFE)
    assert (stale.alertname, stale.state) == (AlertName.INDICATOR_STALE, AlertState.FIRING)
    set_jobs(board, 1000, t, utc(2025, 2, 14))  # far ahead of the trajectory: not behind
    (resolved,) = step(book, roadmap, board, Moment(t, W0 + timedelta(seconds=15)), LIFE)
    assert (resolved.alertname, resolved.state) == (AlertName.INDICATOR_STALE, AlertState.RESOLVED)
    assert resolved.dedup_key == stale.dedup_key


def test_nothing_before_the_start() -> None:
    """A day before 2025-01-01 with no data at all: no record."""
    roadmap = jobs_roadmap()
    board = IndicatorBoard(roadmap)
    assert step(AlertBook(), roadmap, board, Moment(utc(2024, 12, 31), W0), LIFE) == []


def test_pipeline_alert_for_runs_on_the_wall_clock() -> None:
    """The roadmap clock is frozen (a replay); PipelineRejecting (for 5m) opens with since = W0
    (wall) and fires once 5 minutes of wall time have passed, not at 4m59s."""
    condition = pipeline_condition(
        ROADMAP_ID, PipelineRule(), PipelineFigures(5, 20, timedelta(minutes=10))
    )
    assert condition is not None
    conditions = {condition.key: condition}
    book = AlertBook()
    evaluation = evaluate(book, conditions, Moment(R0, W0), LIFE)
    (pending,) = evaluation.records
    assert (pending.state, pending.since, pending.started_at) == (AlertState.PENDING, W0, W0)
    book.settle(evaluation)
    early = evaluate(book, conditions, Moment(R0 + timedelta(days=30), wall(4, 59)), LIFE)
    assert early.records == []
    (firing,) = evaluate(book, conditions, Moment(R0, wall(5)), LIFE).records
    assert firing.state is AlertState.FIRING


def test_pipeline_damping_runs_on_the_wall_clock() -> None:
    """Firing PipelineRejecting clears at wall 10m; the roadmap clock jumps a day but it only
    resolves after 10 minutes of wall time (keep_firing_for 10m)."""
    condition = pipeline_condition(
        ROADMAP_ID, PipelineRule(), PipelineFigures(5, 20, timedelta(minutes=10))
    )
    assert condition is not None
    life = lifecycle(
        per_alert={"RoadmapPipelineRejecting": {"for": "0s", "keep_firing_for": "10m"}}
    )
    book = AlertBook()
    book.settle(evaluate(book, {condition.key: condition}, Moment(R0, W0), life))
    book.settle(evaluate(book, {}, Moment(R0, wall(10)), life))
    late_roadmap = R0 + timedelta(days=1)
    states = _states(evaluate(book, {}, Moment(late_roadmap, wall(19, 59)), life).records)
    assert AlertState.RESOLVED not in {s for s, _ in states}
    (resolved,) = evaluate(book, {}, Moment(late_roadmap, wall(20)), life).records
    assert resolved.state is AlertState.RESOLVED


def test_for_zero_fires_on_the_first_evaluation() -> None:
    """With for 0s, the first record of an episode is already firing (repeat 0)."""
    run = Scenario(life=lifecycle(defaults={"for": "0s", "keep_firing_for": "0s"}))
    (record,) = run.step(at(0))
    assert (record.state, record.repeat, record.previous_at) == (AlertState.FIRING, 0, None)


# -- recovery --------------------------------------------------------------------------------


def _replayed(records: list[AlertTransition]) -> AlertBook:
    """A fresh book rebuilt from the topic: each record through its JSON form."""
    book = AlertBook()
    for record in records:
        book.apply(AlertTransition.model_validate_json(record.model_dump_json()))
    return book


def test_recovered_book_gives_the_same_next_evaluation() -> None:
    """After pending, firing and two repeats, a book rebuilt from those records evaluates the
    next moments exactly like the live one: repeat 3 at 13m with previous_at 12m."""
    run = Scenario()
    for when in (at(0), at(10), at(11), at(12)):
        run.step(when)
    recovered = _replayed(run.published)
    for when in (at(12, 30), at(13)):
        conditions = _holding(run, when)
        live = evaluate(run.book, conditions, when, LIFE)
        again = evaluate(recovered, conditions, when, LIFE)
        assert [r.model_dump() for r in again.records] == [r.model_dump() for r in live.records]
        run.book.settle(live)
        recovered.settle(again)
    assert run.published[-1].repeat == 2
    assert run.book.entries[BEHIND].record.repeat == 3
    assert run.book.entries[BEHIND].record.previous_at == wall(12)


def test_recovered_pending_alert_fires_on_time() -> None:
    """A book rebuilt from a single pending record fires at R0 + 10m, not later."""
    run = Scenario()
    run.step(at(0))
    recovered = _replayed(run.published)
    (firing,) = evaluate(recovered, _holding(run, at(10)), at(10), LIFE).records
    assert firing.state is AlertState.FIRING
    assert firing.dedup_key == run.published[0].dedup_key


def test_recovered_resolved_alert_stays_quiet() -> None:
    """Rebuilt from an episode that ended (resolved), a clear condition yields nothing and the
    book has no open alert."""
    run = Scenario(life=lifecycle(defaults={"for": "0s", "keep_firing_for": "0s"}))
    run.step(at(0))
    run.jobs(1300, at(1))
    run.step(at(1))
    assert run.published[-1].state is AlertState.RESOLVED
    recovered = _replayed(run.published)
    assert recovered.open_records() == []
    assert evaluate(recovered, _holding(run, at(5)), at(5), run.life).records == []


def test_book_counts_open_alerts() -> None:
    """counts() reports pending and firing alerts by (alertname, severity, state)."""
    run = Scenario()
    run.step(at(0))
    assert run.book.counts() == {("RoadmapTargetBehind", "warning", "pending"): 1}
    run.step(at(10))
    assert run.book.counts() == {("RoadmapTargetBehind", "warning", "firing"): 1}


# -- properties ------------------------------------------------------------------------------

_PROPERTY_CONDITION = Condition(
    AlertName.TARGET_BEHIND,
    {
        "alertname": "RoadmapTargetBehind",
        "indicator": JOBS,
        "severity": "warning",
        "owner": "industry-office",
        "roadmap": ROADMAP_ID,
    },
    {"summary": "behind", "runbook_url": "docs/runbooks.md#jobs_created"},
)

_steps = st.lists(
    st.tuples(
        st.booleans(),  # does the condition hold?
        st.integers(min_value=1, max_value=20 * 60),  # roadmap seconds since the last step
        st.integers(min_value=1, max_value=3 * 60),  # wall seconds since the last step
    ),
    min_size=1,
    max_size=60,
)


def _run_property(
    steps: list[tuple[bool, int, int]], for_s: int, keep_s: int
) -> list[tuple[AlertTransition, Moment]]:
    life = lifecycle(
        defaults={"for": f"{for_s}s", "keep_firing_for": f"{keep_s}s"}, repeat_interval="1m"
    )
    book = AlertBook()
    roadmap_now, wall_now = R0, W0
    out: list[tuple[AlertTransition, Moment]] = []
    for holds, dr, dw in steps:
        roadmap_now += timedelta(seconds=dr)
        wall_now += timedelta(seconds=dw)
        now = Moment(roadmap_now, wall_now)
        conditions = {_PROPERTY_CONDITION.key: _PROPERTY_CONDITION} if holds else {}
        evaluation = evaluate(book, conditions, now, life)
        if not book.clearing:
            # with no clearing in progress, the topic alone determines the next evaluation
            replay = _replayed([e.record for e in book.entries.values()])
            again = evaluate(replay, conditions, now, life)
            assert [r.model_dump() for r in again.records] == [
                r.model_dump() for r in evaluation.records
            ]
        book.settle(evaluation)
        out += [(r, now) for r in evaluation.records]
    return out


@settings(max_examples=300, deadline=None)
@given(
    steps=_steps,
    for_s=st.sampled_from([0, 60, 600]),
    keep_s=st.sampled_from([0, 120, 1800]),
)
def test_lifecycle_properties(steps: list[tuple[bool, int, int]], for_s: int, keep_s: int) -> None:
    """Over any sequence of holding/clear evaluations with advancing clocks:
    - an episode starts pending, or firing only when for == 0;
    - firing (repeat 0) comes only from pending once ``for`` passed on the roadmap clock;
    - repeats count up by one with previous_at = the previous firing record's time, at least
      repeat_interval (1m) of wall time apart;
    - resolved only after firing and after keep_firing_for of clear; inactive only after pending;
    - nothing follows resolved or inactive within an episode;
    - the dedup key is constant within an episode and new for the next one;
    - a book rebuilt from the records evaluates like the live one (checked while not clearing).
    """
    records = _run_property(steps, for_s, keep_s)
    episodes: dict[str, list[tuple[AlertTransition, Moment]]] = {}
    order: list[str] = []
    for record, now in records:
        if record.dedup_key not in episodes:
            order.append(record.dedup_key)
        episodes.setdefault(record.dedup_key, []).append((record, now))
    # episodes do not interleave: the keys appear in contiguous runs
    runs = [records[0][0].dedup_key] if records else []
    for record, _ in records[1:]:
        if record.dedup_key != runs[-1]:
            runs.append(record.dedup_key)
    assert runs == order
    for key in order:
        episode = episodes[key]
        first = episode[0][0]
        assert {(r.since, r.started_at) for r, _ in episode} == {(first.since, first.started_at)}
        if for_s == 0:
            assert (first.state, first.repeat) == (AlertState.FIRING, 0)
        else:
            assert first.state is AlertState.PENDING
        previous: AlertTransition | None = None
        last_fired: datetime | None = None
        for record, now in episode:
            if previous is not None:
                assert previous.state in (AlertState.PENDING, AlertState.FIRING)
            if record.state is AlertState.FIRING and record.repeat == 0:
                assert previous is None or previous.state is AlertState.PENDING
                assert now.roadmap - record.since >= timedelta(seconds=for_s)
            elif record.state is AlertState.FIRING:
                assert previous is not None
                assert last_fired is not None
                assert record.repeat == previous.repeat + 1
                assert record.previous_at == last_fired
                assert record.at - last_fired >= timedelta(minutes=1)
            elif record.state is AlertState.RESOLVED:
                assert previous is not None
                assert previous.state is AlertState.FIRING
            elif record.state is AlertState.INACTIVE:
                assert previous is not None
                assert previous.state is AlertState.PENDING
            if record.state is AlertState.FIRING:
                last_fired = record.at
            previous = record


@settings(max_examples=200, deadline=None)
@given(steps=_steps, keep_s=st.sampled_from([60, 600, 1800]))
def test_resolved_only_after_keep_firing_for_of_clear(
    steps: list[tuple[bool, int, int]], keep_s: int
) -> None:
    """Independently of the book: a resolved record comes only when the condition was clear at
    every evaluation of the last keep_firing_for of roadmap time (and at least one before)."""
    life = lifecycle(defaults={"for": "0s", "keep_firing_for": f"{keep_s}s"})
    book = AlertBook()
    roadmap_now, wall_now = R0, W0
    history: list[tuple[datetime, bool]] = []
    for holds, dr, dw in steps:
        roadmap_now += timedelta(seconds=dr)
        wall_now += timedelta(seconds=dw)
        conditions = {_PROPERTY_CONDITION.key: _PROPERTY_CONDITION} if holds else {}
        evaluation = evaluate(book, conditions, Moment(roadmap_now, wall_now), life)
        history.append((roadmap_now, holds))
        if any(r.state is AlertState.RESOLVED for r in evaluation.records):
            # the first clear evaluation of the current clear run
            run_start = roadmap_now
            for t, held in reversed(history):
                if held:
                    break
                run_start = t
            assert roadmap_now - run_start >= timedelta(seconds=keep_s)
        book.settle(evaluation)
