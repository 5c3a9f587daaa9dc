"""The whole-pipeline benchmark's report: percentiles, the Markdown page and the plot."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any


def percentiles(delays_s: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max of ``delays_s`` in milliseconds (inclusive method)."""
    if len(delays_s) < 2:
        raise ValueError("at least two samples are needed for percentiles")
    cuts = statistics.quantiles(sorted(delays_s), n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1000, 1),
        "p95_ms": round(cuts[94] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
        "max_ms": round(max(delays_s) * 1000, 1),
    }


GOALS = (
    # (what, the stage whose median ratio to the batched ceiling is compared, at least)
    ("ingest alone (1 process) >= 0.4 of the batched pass-through", "ingest alone, 1 process", 0.4),
    ("ingest in the pipeline >= 0.4 of the batched pass-through", "ingest", 0.4),
    ("metrics replay >= 0.8 of the batched pass-through", "metrics (alone, replaying)", 0.8),
)
LATENCY_GOAL_MS = 200.0


def goals(column: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal with the measured figure and whether it is met (reported, never asserted)."""
    ratios = column["ratio_to_batched"]
    met = [
        {"goal": goal, "measured": ratios[stage], "met": ratios[stage] >= least}
        for goal, stage, least in GOALS
    ]
    latency = column["latency"]
    p99 = latency["p99_ms"]
    met.append(
        {
            "goal": f"p99 publish -> /metrics <= {LATENCY_GOAL_MS:.0f} ms at 1,000 events/s "
            f"(measured at {latency['rate_per_s']:,}/s)",
            "measured": p99,
            "met": p99 <= LATENCY_GOAL_MS and latency["rate_per_s"] >= 1000,
        }
    )
    return met


def _wall_time(summary: dict[str, Any]) -> str:
    return f" (wall time {summary['wall_time_s'] / 60:.1f} min)" if "wall_time_s" in summary else ""


def _machine_line(machine: dict[str, Any]) -> str:
    return (
        f"Machine: {machine['cores']} cores, {machine['memory_gib']} GiB, {machine['cpu']}; "
        f"Python {machine['python']}, aiokafka {machine['aiokafka']} (C extension loaded: "
        f"{machine['aiokafka_c_extension']}), FastStream {machine['faststream']}, "
        f"pydantic {machine['pydantic']}, broker {machine['broker']}, on the same machine as "
        "the services."
    )


LABELS = {"kafka": "Apache Kafka", "embedded": "embedded broker"}
STAGE_TITLES = {
    "ingest": "ingest in the pipeline (burst)",
    "metrics (in the pipeline)": "metrics in the pipeline (burst)",
    "whole pipeline": "whole pipeline (burst: first publish to last event folded)",
}
RATIOS = (
    ("ratio_to_batched", "ratio to batched ceiling"),
    ("ratio_to_java_producer", "ratio to Java producer"),
    ("ratio_to_java_consumer", "ratio to Java consumer"),
)


def _spread_text(figures: dict[str, Any] | None, digits: int = 2) -> str:
    """``median (min–max)`` of interleaved runs, or the one value of a single run."""
    if figures is None:
        return "–"
    if figures["runs"] == 1:
        return f"{figures['median']:,.{digits}f} (once)"
    return (
        f"{figures['median']:,.{digits}f} ({figures['min']:,.{digits}f}–"
        f"{figures['max']:,.{digits}f})"
    )


def _columns(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, figures) of every broker measured, the page's main one first."""
    main = LABELS.get(summary.get("primary_broker", ""), summary["machine"]["broker"])
    others = summary.get("other_brokers", {})
    return [(main, summary), *((LABELS.get(n, n), c) for n, c in others.items())]


def _comparison(summary: dict[str, Any]) -> list[str]:
    """Every broker side by side: each stage's median rate and its ratios with their spread,
    the goals, the ceilings and anchors, the broker's memory and CPU, the latency. Empty for a
    summary without interleaved rounds (``stages``)."""
    if "stages" not in summary:
        return []
    columns = _columns(summary)
    head = ["stage"]
    keys: list[tuple[int, str]] = []
    for index, (label, column) in enumerate(columns):
        head.append(f"{label}: events/s")
        for key, title in RATIOS:
            if any(key in stage for stage in column["stages"].values()):
                head.append(f"{label}: {title}")
                keys.append((index, key))
    rows = [f"| {' | '.join(head)} |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for stage in summary["stages"]:
        cells = [STAGE_TITLES.get(stage, stage)]
        for index, (_, column) in enumerate(columns):
            figures = column["stages"].get(stage, {})
            cells.append(f"{figures['events_per_s']:,}" if figures else "–")
            cells += [_spread_text(figures.get(key)) for i, key in keys if i == index]
        rows.append(f"| {' | '.join(cells)} |")
    anchors = summary.get("java_anchors")
    rounds = summary["rounds"]
    lines = [
        f"## {' and the '.join(label for label, _ in columns)}, side by side",
        "",
        f"Each broker was measured in {rounds} interleaved rounds (ceiling, burst, ceiling, ingest "
        "alone, ceiling, metrics alone, Java anchor): a stage's ratio is to the ceiling measured "
        "just before it and to the anchor of the same round, given as the median of the rounds "
        "and, in brackets, the spread (min–max). Stages measured once are compared with the "
        "medians. The machine has 2 cores shared by broker, services and load, so the spread is "
        "large; read the medians.",
        "",
        *rows,
        "",
    ]
    if anchors is not None:
        lines += [
            f"Java anchor: Apache Kafka's own `ProducerPerformance` ({anchors['records']:,} "
            f"records of {anchors['record_size']} bytes, the upstream messages' mean size, "
            "acks=all, idempotent, batch.size 256 KiB as the services' producer, as fast as it "
            "goes; the JVM's warm-up included) gave "
            f"{_spread_text(anchors['producer_per_s'], 0)} records/s, and "
            "`ConsumerPerformance` reading them back "
            f"{_spread_text(anchors['consumer_fetch_per_s'], 0)} records/s (its fetch rate, "
            "without the group join), from the jars the broker runs, on the same broker. "
            "Batched ceiling (aiokafka pass-through): "
            + "; ".join(
                f"{label} {_spread_text(column['ceilings']['batched']['spread'], 0)} events/s"
                for label, column in columns
            )
            + ".",
            "",
        ]
    lines += _goals_table(summary, columns)
    lines += _broker_table(columns)
    return lines


def _goals_table(summary: dict[str, Any], columns: list[tuple[str, dict[str, Any]]]) -> list[str]:
    goals_by_label = [summary["goals"][name] for name in summary["goals"]]
    lines = [
        "### Goals (medians; reported, not asserted)",
        "",
        "| goal | " + " | ".join(label for label, _ in columns) + " |",
        "|---" + "|---" * len(columns) + "|",
    ]
    for row, goal in enumerate(goals_by_label[0]):
        cells = [
            f"{found[row]['measured']}: {'met' if found[row]['met'] else 'not met'}"
            for found in goals_by_label
        ]
        lines.append(f"| {goal['goal']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _broker_table(columns: list[tuple[str, dict[str, Any]]]) -> list[str]:
    lines = [
        "### The broker, and the latency",
        "",
        "| figure | " + " | ".join(label for label, _ in columns) + " |",
        "|---" + "|---:" * len(columns) + "|",
        "| broker | " + " | ".join(column["broker"] for _, column in columns) + " |",
    ]
    figures = (
        ("broker peak resident memory (VmHWM), MiB", "broker_usage", "peak_rss_mib"),
        ("broker resident memory at the end (VmRSS), MiB", "broker_usage", "rss_mib"),
        ("broker CPU seconds over the whole run", "broker_usage", "cpu_s"),
        ("latency p50, ms", "latency", "p50_ms"),
        ("latency p95, ms", "latency", "p95_ms"),
        ("latency p99, ms", "latency", "p99_ms"),
        ("latency max, ms", "latency", "max_ms"),
    )
    for title, section, key in figures:
        lines.append(
            f"| {title} | " + " | ".join(f"{c[section][key]:,}" for _, c in columns) + " |"
        )
    return [*lines, ""]


def render_markdown(summary: dict[str, Any]) -> str:
    """The page ``docs/benchmarks.md``: every figure of ``summary`` in tables."""
    burst, latency, alone = summary["burst"], summary["latency"], summary["metrics_alone"]
    ceilings, ratios = summary["ceilings"], summary["ratio_to_batched"]
    ingest_alone, http = summary["ingest_alone"], summary["http"]
    http_publishers = summary["http_publishers"]
    default_split = summary["ingest_alone_default_partitions"]
    kinds = ", ".join(f"{n:,} {kind}" for kind, n in burst["kinds"].items())
    lines = [
        "# Benchmark: the whole pipeline",
        "",
        f"Recorded {summary['recorded_at']} with `{summary['command']}`"
        f"{_wall_time(summary)}. Figures are measured on this machine, never asserted; run it "
        "again to get yours.",
        "",
        _machine_line(summary["machine"]),
        "",
        f"Stream: {burst['messages']:,} upstream messages ({kinds}); "
        f"{burst['canonical_events']:,} reached the canonical topic (new events and corrections, "
        "and the few re-sends of an event older than ingest's dedup window of 100,000 ids, "
        "which ingest publishes again by design; metrics' fold absorbs them).",
        "",
        "![throughput and latency](benchmarks.png)",
        "",
        *_comparison(summary),
        f"## Throughput on {_columns(summary)[0][0]}",
        "",
        "| stage | events/s (median) | ratio to the batched ceiling (median) |",
        "|---|---:|---:|",
        f"| upstream producer (the benchmark publishing) | {burst['publish_events_per_s']:,} | |",
        f"| ingest in the pipeline (validate, dedup, publish canonical/DLQ, commit) | "
        f"{burst['ingest_events_per_s']:,} | {ratios['ingest']} |",
        f"| ingest alone, 1 process ({ingest_alone[0]['events']:,} messages, "
        f"{ingest_alone[0]['partitions_per_topic']} partitions a topic) | "
        f"{ingest_alone[0]['events_per_s']:,} | {ratios['ingest alone, 1 process']} |",
        f"| ingest alone, 2 processes in one group (the same) | "
        f"{ingest_alone[1]['events_per_s']:,} | {ratios['ingest alone, 2 processes']} |",
        f"| ingest alone, 2 processes, {default_split['partitions_per_topic']} partitions a "
        f"topic (the default) | {default_split['events_per_s']:,} | "
        f"{ratios['ingest alone, 2 processes, default partitions']} |",
        f"| ingest over HTTP (`POST /v1/events`, {http['batch']:,} events a request, "
        f"{http['clients']} clients) | {http['events_per_s']:,} | {ratios['ingest over HTTP']} |",
        f"| ingest over HTTP with a publishers file (token lookup and scope check per event) | "
        f"{http_publishers['events_per_s']:,} | "
        f"{ratios['ingest over HTTP, publishers file']} |",
        f"| metrics, in the pipeline (paced by ingest) | {burst['metrics_events_per_s']:,} | "
        f"{ratios['metrics (in the pipeline)']} |",
        f"| metrics, alone (replaying the canonical topic) | {alone['events_per_s']:,} | "
        f"{ratios['metrics (alone, replaying)']} |",
        f"| whole pipeline (first publish to last event folded) | "
        f"{burst['pipeline_events_per_s']:,} | {ratios['whole pipeline']} |",
        f"| ceiling: {ceilings['per_record']['name']} | "
        f"{ceilings['per_record']['events_per_s']:,} | "
        f"{ceilings['per_record']['events_per_s'] / ceilings['batched']['events_per_s']:.2f} |",
        f"| ceiling: {ceilings['batched']['name']} | {ceilings['batched']['events_per_s']:,} "
        "| 1.0 |",
        "",
        f"Two ingest processes in one group take {summary['scaling_two_processes']} times what "
        f"one takes on upstream topics of {ingest_alone[0]['partitions_per_topic']} partitions, "
        f"which they split evenly, and {summary['scaling_two_processes_default_partitions']} "
        f"times on {default_split['partitions_per_topic']} (partitions split 5 to 4, and the "
        "first to join reads alone until the second has joined); over HTTP one process takes "
        f"{summary['http_to_kafka_ingest']} times its Kafka rate, and "
        f"{summary['http_publishers_to_open']} times the open rate with a publishers file. "
        "CPU profiles of ingest and "
        "metrics during the burst: "
        "[profile-ingest.svg](profile-ingest.svg), [profile-metrics.svg](profile-metrics.svg) "
        "(py-spy flame graphs; open them in a browser, click to zoom).",
        "",
        f"The burst took {burst['pipeline_seconds']} s. Alerts consumed "
        f"{burst['alerts_kpi_snapshots']:,} KPI snapshots (metrics publishes an indicator at "
        f"most once a second) and had the last one {burst['alerts_done_after_metrics_s']} s "
        "after metrics folded the last event.",
        "",
        f"## Latency on {_columns(summary)[0][0]}: upstream publish to the value on metrics' "
        "`/metrics`",
        "",
        f"{latency['events']:,} new events at a steady {latency['rate_per_s']:,}/s through "
        "ingest and metrics; `/metrics` scraped every 10 ms.",
        "",
        "| p50 | p95 | p99 | max |",
        "|---:|---:|---:|---:|",
        f"| {latency['p50_ms']} ms | {latency['p95_ms']} ms | {latency['p99_ms']} ms | "
        f"{latency['max_ms']} ms |",
        "",
        f"## Peak resident memory (VmHWM) on {_columns(summary)[0][0]}",
        "",
        "| process | MiB |",
        "|---|---:|",
        *(f"| {name} | {mib:,.0f} |" for name, mib in summary["peak_rss_mib"].items()),
        *(
            f"| ingest alone (1 process), resident after {when} | {mib:,.0f} |"
            for when, mib in ingest_alone[0].get("rss_mib_after", {}).items()
        ),
        f"| metrics alone, after replaying {alone['events']:,} events | "
        f"{alone['peak_rss_mib']:,.0f} |",
        "",
    ]
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    """Cumulative events per stage during the burst, and the latency distribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["burst"]["samples"]
    delays_ms = sorted(d * 1000 for d in result["latency"]["delays_s"])
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    at = [s[0] for s in samples]
    for column, label in ((1, "published upstream"), (2, "ingest received"), (3, "metrics folded")):
        left.plot(at, [s[column] for s in samples], label=label)
    left.set_xlabel("seconds since the first publish")
    left.set_ylabel("events")
    left.set_title(f"Burst of {result['burst']['messages']:,} messages")
    left.legend()
    left.grid(alpha=0.3)
    share = [(i + 1) / len(delays_ms) for i in range(len(delays_ms))]
    right.plot(delays_ms, share)
    latency = result["latency"]
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        right.axvline(latency[key], linestyle="--", alpha=0.5)
        right.annotate(key[:3], (latency[key], 0.05), rotation=90)
    right.set_xlabel("ms from upstream publish to metrics' /metrics")
    right.set_ylabel("share of events")
    right.set_title(f"Latency at {latency['rate_per_s']:,} events/s")
    right.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
