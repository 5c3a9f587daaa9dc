"""The whole-pipeline benchmark's report: percentiles, the Markdown page, the plot."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from benchmarks.events import pipeline_stream
from benchmarks.pipeline_report import percentiles, plot, render_markdown
from contracts.codec import Accepted, decode_event


def test_percentiles_of_zero_to_a_thousand_milliseconds() -> None:
    """1,001 delays 0, 1, ..., 1000 ms in any order: the k-th percentile is k * 10 ms."""
    delays = [ms / 1000 for ms in range(1001)]
    random.Random(3).shuffle(delays)
    assert percentiles(delays) == {
        "p50_ms": 500.0,
        "p95_ms": 950.0,
        "p99_ms": 990.0,
        "max_ms": 1000.0,
    }


def test_percentiles_need_two_samples() -> None:
    with pytest.raises(ValueError, match="at least two"):
        percentiles([0.1])


def _result() -> dict[str, Any]:
    return {
        "recorded_at": "2026-11-28T00:00:00Z",
        "command": "make bench EVENTS=1000",
        "machine": {
            "cores": 2,
            "memory_gib": 23.5,
            "cpu": "Test CPU",
            "python": "3.11.7",
            "aiokafka": "0.14.0",
            "aiokafka_c_extension": True,
            "faststream": "0.7.8",
            "pydantic": "2.14.4",
            "broker": "tansu 0.6.0",
        },
        "burst": {
            "messages": 1000,
            "kinds": {"new": 900, "correction": 50, "duplicate": 30, "invalid": 20},
            "canonical_events": 950,
            "publish_events_per_s": 50_000,
            "ingest_events_per_s": 12_345,
            "metrics_events_per_s": 11_111,
            "pipeline_events_per_s": 9_876,
            "pipeline_seconds": 0.1,
            "alerts_kpi_snapshots": 7,
            "alerts_done_after_metrics_s": 0.4,
            "samples": [[0.0, 0, 0, 0, 0], [0.1, 1000, 1000, 950, 7]],
        },
        "latency": {
            "rate_per_s": 1000,
            "events": 3,
            "p50_ms": 80.0,
            "p95_ms": 120.0,
            "p99_ms": 150.0,
            "max_ms": 151.0,
            "delays_s": [0.08, 0.12, 0.151],
        },
        "metrics_alone": {"events": 950, "events_per_s": 20_000, "peak_rss_mib": 64.2},
        "ceilings": {
            "per_record": {"name": "a send() per record", "events_per_s": 40_000},
            "batched": {"name": "batched", "events_per_s": 80_000},
        },
        "ingest_alone": [
            {"processes": 1, "partitions_per_topic": 6, "events": 1000, "events_per_s": 30_000},
            {"processes": 2, "partitions_per_topic": 6, "events": 1000, "events_per_s": 51_000},
        ],
        "ingest_alone_default_partitions": {
            "processes": 2,
            "partitions_per_topic": 3,
            "events": 1000,
            "events_per_s": 42_000,
        },
        "http": {"events": 1000, "batch": 1000, "clients": 2, "events_per_s": 24_000},
        "http_publishers": {
            "events": 1000,
            "batch": 1000,
            "clients": 2,
            "publishers_file": True,
            "events_per_s": 22_000,
        },
        "ratio_to_batched": {
            "ingest": 0.15,
            "ingest alone, 1 process": 0.38,
            "ingest alone, 2 processes": 0.64,
            "ingest alone, 2 processes, default partitions": 0.53,
            "ingest over HTTP": 0.3,
            "ingest over HTTP, publishers file": 0.28,
            "metrics (in the pipeline)": 0.14,
            "metrics (alone, replaying)": 0.25,
            "whole pipeline": 0.12,
        },
        "scaling_two_processes": 1.7,
        "scaling_two_processes_default_partitions": 1.4,
        "http_to_kafka_ingest": 0.8,
        "http_publishers_to_open": 0.92,
        "peak_rss_mib": {"ingest": 66.0, "metrics": 60.4, "alerts": 64.0, "broker": 32.0},
    }


def test_the_page_carries_every_figure_and_the_machine() -> None:
    page = render_markdown(_result())
    for figure in (
        "2 cores, 23.5 GiB, Test CPU",
        "tansu 0.6.0",
        "| ingest in the pipeline (validate, dedup, publish canonical/DLQ, commit) | 12,345 "
        "| 0.15 |",
        "| ingest alone, 1 process (1,000 messages, 6 partitions a topic) | 30,000 | 0.38 |",
        "| ingest alone, 2 processes in one group (the same) | 51,000 | 0.64 |",
        "| ingest over HTTP (`POST /v1/events`, 1,000 events a request, 2 clients) | 24,000 "
        "| 0.3 |",
        "| ingest over HTTP with a publishers file (token lookup and scope check per event) "
        "| 22,000 | 0.28 |",
        "and 0.92 times the open rate with a publishers file",
        "| metrics, alone (replaying the canonical topic) | 20,000 | 0.25 |",
        "| whole pipeline (first publish to last event folded) | 9,876 | 0.12 |",
        "| ceiling: a send() per record | 40,000 | 0.50 |",
        "| ceiling: batched | 80,000 | 1.0 |",
        "take 1.7 times what one takes on upstream topics of 6 partitions",
        "| ingest alone, 2 processes, 3 partitions a topic (the default) | 42,000 | 0.53 |",
        "and 1.4 times on 3",
        "| 80.0 ms | 120.0 ms | 150.0 ms | 151.0 ms |",
        "| metrics | 60 |",
        "900 new, 50 correction, 30 duplicate, 20 invalid",
        "`make bench EVENTS=1000`",
    ):
        assert figure in page, figure


def test_the_plot_is_a_png(tmp_path: Path) -> None:
    path = tmp_path / "plot.png"
    plot(_result(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_stream_has_its_kinds_in_the_asked_shares_and_rejects_only_the_invalid() -> None:
    stream = pipeline_stream(5000, seed=1)
    assert len(stream.messages) == 5000
    assert sum(stream.kinds.values()) == 5000
    assert 60 <= stream.kinds["invalid"] <= 140  # 2% of 5,000, give or take
    assert stream.kinds["duplicate"] > 0
    assert stream.kinds["correction"] > 0
    rejected = sum(not isinstance(decode_event(value), Accepted) for _, value in stream.messages)
    assert rejected == stream.kinds["invalid"]
