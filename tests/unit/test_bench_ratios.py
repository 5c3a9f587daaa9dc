"""The bench's pure parts: ratios of interleaved runs, the Java perf tools' output, the goals."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.interleaved import median_run, ratio_spread, ratios, spread, stage_figures
from benchmarks.java_anchor import parse_consumer, parse_producer
from benchmarks.pipeline_report import goals

pytestmark = pytest.mark.unit

# Captured from Apache Kafka 4.4.0's tools on a one-node KRaft broker on this machine.
PRODUCER_OUTPUT = (  # --num-records 100000 --record-size 291 --reporting-interval 1000
    "8749 records sent, 8645.3 records/sec (2.40 MB/sec), 484.3 ms avg latency, 637.0 ms max "
    "latency.\n"
    "54108 records sent, 54000.0 records/sec (14.99 MB/sec), 1012.3 ms avg latency, 1318.0 ms "
    "max latency.\n"
    "100000 records sent, 41631.973356 records/sec (11.55 MB/sec), 1098.52 ms avg latency, "
    "1459.00 ms max latency, 1205 ms 50th, 1432 ms 95th, 1449 ms 99th, 1458 ms 99.9th.\n"
)
CONSUMER_OUTPUT = (  # --num-records 50000
    "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
    "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n"
    "2026-12-05 13:13:09:675, 2026-12-05 13:13:11:328, 14.3051, 8.6540, 50000, 30248.0339, "
    "1068, 585, 24.4532, 85470.0855\n"
)


def test_the_producer_summary_is_read_and_progress_lines_are_not() -> None:
    assert parse_producer(PRODUCER_OUTPUT) == {
        "records": 100000.0,
        "per_s": 41631.973356,
        "mb_s": 11.55,
        "avg_ms": 1098.52,
        "max_ms": 1459.0,
        "p50_ms": 1205.0,
        "p95_ms": 1432.0,
        "p99_ms": 1449.0,
    }


def test_a_producer_output_without_a_summary_is_an_error() -> None:
    with pytest.raises(ValueError, match="no ProducerPerformance summary"):
        parse_producer("\n".join(PRODUCER_OUTPUT.splitlines()[:2]))


def test_the_consumer_result_is_read_by_column_name() -> None:
    assert parse_consumer("WARNING: something\n" + CONSUMER_OUTPUT) == {
        "records": 50000.0,
        "per_s": 30248.0339,
        "fetch_per_s": 85470.0855,
        "rebalance_ms": 1068.0,
        "mb_s": 8.654,
    }


def test_a_consumer_output_without_a_result_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="no ConsumerPerformance result"):
        parse_consumer(CONSUMER_OUTPUT.splitlines()[0])


def test_ratios_pair_each_run_with_the_ceiling_of_its_round() -> None:
    assert ratios([50.0, 30.0, 40.0], [100.0, 100.0, 50.0]) == [0.5, 0.3, 0.8]
    with pytest.raises(ValueError, match="one ceiling a stage run"):
        ratios([1.0, 2.0], [1.0])


def test_the_spread_is_the_median_and_the_extremes() -> None:
    assert spread([0.3, 0.9, 0.5]) == {"median": 0.5, "min": 0.3, "max": 0.9, "runs": 3}
    assert spread([0.2, 0.4]) == {"median": 0.3, "min": 0.2, "max": 0.4, "runs": 2}
    assert ratio_spread([50.0, 30.0, 40.0], [100.0, 100.0, 50.0])["median"] == 0.5
    with pytest.raises(ValueError, match="no runs"):
        spread([])


def test_the_median_run_is_the_middle_one_or_the_lower_middle() -> None:
    assert median_run([30.0, 10.0, 20.0]) == 2
    assert median_run([40.0, 10.0, 30.0, 20.0]) == 3


def test_a_stage_is_compared_with_the_ceiling_and_every_anchor_of_its_rounds() -> None:
    figures = stage_figures(
        [40_000.0, 60_000.0, 50_000.0],
        [100_000.0, 100_000.0, 200_000.0],
        {"java_producer": [80_000.0, 80_000.0, 100_000.0]},
    )
    assert figures == {
        "events_per_s": 50_000,
        "rates": [40_000, 60_000, 50_000],
        "ratio_to_batched": {"median": 0.4, "min": 0.25, "max": 0.6, "runs": 3},
        "ratio_to_java_producer": {"median": 0.5, "min": 0.5, "max": 0.75, "runs": 3},
    }


def _column(ingest: float, replay: float, p99: float) -> dict[str, Any]:
    return {
        "ratio_to_batched": {
            "ingest alone, 1 process": ingest,
            "ingest": ingest / 2,
            "metrics (alone, replaying)": replay,
        },
        "latency": {"rate_per_s": 1000, "p99_ms": p99},
    }


def test_goals_are_reported_met_or_not() -> None:
    met = {row["goal"]: row["met"] for row in goals(_column(0.4, 0.79, 200.0))}
    assert met == {
        "ingest alone (1 process) >= 0.4 of the batched pass-through": True,
        "ingest in the pipeline >= 0.4 of the batched pass-through": False,
        "metrics replay >= 0.8 of the batched pass-through": False,
        "p99 publish -> /metrics <= 200 ms at 1,000 events/s (measured at 1,000/s)": True,
    }
