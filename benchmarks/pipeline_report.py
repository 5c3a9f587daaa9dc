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


def _machine_line(machine: dict[str, Any]) -> str:
    return (
        f"Machine: {machine['cores']} cores, {machine['memory_gib']} GiB, {machine['cpu']}; "
        f"Python {machine['python']}, aiokafka {machine['aiokafka']} (C extension loaded: "
        f"{machine['aiokafka_c_extension']}), FastStream {machine['faststream']}, "
        f"pydantic {machine['pydantic']}, broker {machine['broker']} (embedded, memory-only, "
        "on the same machine as the services)."
    )


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
        f"Recorded {summary['recorded_at']} with `{summary['command']}`. Figures are measured "
        "on this machine, never asserted; run it again to get yours.",
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
        "## Throughput",
        "",
        "| stage | events/s | ratio to the batched ceiling |",
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
        "## Latency: upstream publish to the value on metrics' `/metrics`",
        "",
        f"{latency['events']:,} new events at a steady {latency['rate_per_s']:,}/s through "
        "ingest and metrics; `/metrics` scraped every 10 ms.",
        "",
        "| p50 | p95 | p99 | max |",
        "|---:|---:|---:|---:|",
        f"| {latency['p50_ms']} ms | {latency['p95_ms']} ms | {latency['p99_ms']} ms | "
        f"{latency['max_ms']} ms |",
        "",
        "## Peak resident memory (VmHWM)",
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
