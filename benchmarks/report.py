"""Write a benchmark result as JSON and as a Markdown table under ``docs/benchmarks/``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def say(message: str) -> None:
    """One line of progress or result on stdout, flushed at once (runs take minutes)."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def _save_json_and_header(result: dict[str, Any], out_dir: Path, run: str) -> list[str]:
    """Write ``<name>.json``; return the Markdown title, provenance and machine lines."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name = result["benchmark"]
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    machine = result["machine"]
    return [
        f"# Benchmark: {name}",
        "",
        f"Recorded {result['recorded_at']} with `make bench-{name}`{run}. "
        "Figures are measured, not asserted.",
        "",
        f"Machine: {machine['cores']} cores, {machine['memory_gib']} GiB, {machine['cpu']}; "
        f"Python {machine['python']}, aiokafka {machine['aiokafka']} (C extension loaded: "
        f"{machine['aiokafka_c_extension']}), FastStream {machine['faststream']}, "
        f"pydantic {machine['pydantic']}, broker {machine['broker']} (embedded, memory-only).",
        "",
    ]


def write_report(result: dict[str, Any], out_dir: Path) -> None:
    """JSON plus a Markdown table with one row per stage."""
    lines = _save_json_and_header(result, out_dir, f" ({result['events']:,} events)")
    lines += [
        "| stage | events | seconds | events/s | CPU s (stage) | CPU s (broker) | CPU µs/event "
        "(stage) | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for stage in result["stages"]:
        cpu = "" if stage["cpu_s"] is None else f"{stage['cpu_s']:.1f}"
        broker = "" if stage["broker_cpu_s"] is None else f"{stage['broker_cpu_s']:.1f}"
        per_event = (
            "" if stage["cpu_s"] is None else f"{stage['cpu_s'] / stage['events'] * 1e6:.0f}"
        )
        rss = "" if stage["peak_rss_mib"] is None else f"{stage['peak_rss_mib']:.0f}"
        lines.append(
            f"| {stage['name']} | {stage['events']:,} | {stage['seconds']:.1f} | "
            f"{stage['events_per_s']:,.0f} | {cpu} | {broker} | {per_event} | {rss} |"
        )
    lines += [
        "",
        *(f"- {key.replace('_', ' ')}: {value}" for key, value in result.items() if "ratio" in key),
        "",
    ]
    (out_dir / f"{result['benchmark']}.md").write_text("\n".join(lines), encoding="utf-8")


def write_table(result: dict[str, Any], out_dir: Path) -> None:
    """JSON plus a Markdown list of every figure, section by section."""
    lines = _save_json_and_header(result, out_dir, "")
    for section, figures in result.items():
        if not isinstance(figures, dict) or section == "machine":
            continue
        lines += [f"## {section}", "", "| figure | value |", "|---|---:|"]
        lines += [
            f"| {key.replace('_', ' ')} | {value:,} |"
            if isinstance(value, int | float)
            else f"| {key.replace('_', ' ')} | {value} |"
            for key, value in figures.items()
        ]
        lines.append("")
    (out_dir / f"{result['benchmark']}.md").write_text("\n".join(lines), encoding="utf-8")
