"""``roadmap-monitor status``: the roadmap's scorecard in the terminal.

Read from the running services: every indicator's actual, expected, target, projection at the
deadline and outlook (on track, at risk, behind) from the metrics service's ``/metrics``, and
the open alerts from the alerts service's ``/v1/alerts``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple, TextIO

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from services.alerts.wording import amount

EXIT_OK = 0
EXIT_UNREACHABLE = 1


class Row(NamedTuple):
    indicator: str
    title: str
    unit: str
    actual: Decimal | None
    expected: Decimal | None
    target: Decimal | None
    progress: Decimal | None
    alerts: str
    projected: Decimal | None = None
    outlook: str = ""
    """``on track``, ``at risk`` or ``behind`` (metrics' ``roadmap_indicator_outlook``)."""


class _Scrape(NamedTuple):
    values: dict[str, dict[str, float]]
    """Per indicator, its gauges by short name."""
    info: dict[str, dict[str, str]]
    outlooks: dict[str, str]
    evaluated: float


def _gauges(text: str) -> _Scrape:
    """Per indicator: its gauges by short name, its info labels and its outlook; the evaluation
    time."""
    values: dict[str, dict[str, float]] = defaultdict(dict)
    info: dict[str, dict[str, str]] = {}
    outlooks: dict[str, str] = {}
    evaluated = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            indicator = sample.labels.get("indicator")
            if sample.name == "roadmap_indicator_info" and indicator:
                info[indicator] = dict(sample.labels)
            elif sample.name == "roadmap_indicator_outlook" and indicator:
                if sample.value:  # one series per state; 1 marks the current one
                    outlooks[indicator] = sample.labels.get("outlook", "")
            elif sample.name.startswith("roadmap_indicator_") and indicator:
                values[indicator][sample.name.removeprefix("roadmap_indicator_")] = sample.value
            elif sample.name == "roadmap_evaluation_timestamp_seconds":
                evaluated = sample.value
    return _Scrape(values, info, outlooks, evaluated)


def _number(values: dict[str, float], name: str) -> Decimal | None:
    value = values.get(name)
    return None if value is None else Decimal(str(value))


def scorecard(metrics_text: str, alerts: list[dict[str, Any]]) -> tuple[list[Row], float]:
    """The rows of the scorecard, in the roadmap file's order, and the evaluation time."""
    values, info, outlooks, evaluated = _gauges(metrics_text)
    open_alerts: dict[str, list[str]] = defaultdict(list)
    for alert in alerts:
        if alert["state"] in ("pending", "firing"):
            name = alert["alertname"].removeprefix("Roadmap")
            open_alerts[alert["labels"]["indicator"]].append(f"{alert['state']}: {name}")
    rows = []
    for indicator, labels in info.items():
        own = values.get(indicator, {})
        rows.append(
            Row(
                indicator,
                labels.get("title", indicator),
                labels.get("unit", ""),
                _number(own, "value"),
                _number(own, "expected"),
                _number(own, "target"),
                _number(own, "progress_ratio"),
                ", ".join(sorted(open_alerts.pop(indicator, []))) or "ok",
                _number(own, "projected"),
                outlooks.get(indicator, "").replace("_", " "),
            )
        )
    for indicator, names in sorted(open_alerts.items()):  # e.g. the pipeline alert
        rows.append(Row(indicator, indicator, "", None, None, None, None, ", ".join(names)))
    return rows, evaluated


_HEADER = ("indicator", "actual", "expected", "target", "progress", "projected", "outlook")
_STYLES = {
    "firing": "bold red",
    "pending": "yellow",
    "ok": "green",
    "behind": "red",
    "at risk": "yellow",
    "on track": "green",
}
"""How a state is coloured on a terminal (plain text anywhere else)."""


def _styled(text: str) -> Text:
    """``text`` with each state word in it coloured (an alerts cell may hold several)."""
    styled = Text(text)
    for word, style in _STYLES.items():
        styled.highlight_words([word], style=style)
    return styled


def table(rows: list[Row], evaluated: float) -> Table:
    """The scorecard as a ``rich`` table: figures right-aligned, states coloured."""

    def show(value: Decimal | None, unit: str) -> str:
        return "-" if value is None else amount(value, unit)

    when = (
        datetime.fromtimestamp(evaluated, UTC).strftime("%Y-%m-%d %H:%M UTC") if evaluated else "?"
    )
    scorecard_table = Table(
        title=f"Roadmap scorecard, evaluated at {when}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for name in _HEADER:
        text_column = name in ("indicator", "outlook")
        scorecard_table.add_column(name, justify="left" if text_column else "right", no_wrap=True)
    scorecard_table.add_column("alerts", justify="left")
    for r in rows:
        scorecard_table.add_row(
            r.indicator,
            show(r.actual, r.unit),
            show(r.expected, r.unit),
            show(r.target, r.unit),
            "-" if r.progress is None else f"{r.progress * 100:.0f}%",
            show(r.projected, r.unit),
            _styled(r.outlook or "-"),
            _styled(r.alerts),
        )
    return scorecard_table


def render(rows: list[Row], evaluated: float, out: TextIO) -> None:
    """Print the table on ``out``: coloured when it is a terminal, plain text otherwise, and
    never wrapped when it is not (a file or a pipe gets whole lines)."""
    if out.isatty():
        Console(file=out, highlight=False).print(table(rows, evaluated))
        return
    console = Console(file=out, width=240, highlight=False, color_system=None)
    with console.capture() as captured:
        console.print(table(rows, evaluated), crop=False)
    out.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def show_status(metrics_url: str, alerts_url: str, out: TextIO, err: TextIO) -> int:
    """Print the scorecard; exit 1 naming the service that does not answer."""
    metrics_url, alerts_url = metrics_url.rstrip("/"), alerts_url.rstrip("/")
    answers = {}
    with httpx.Client(timeout=5) as client:
        for name, url in (
            ("metrics", f"{metrics_url}/metrics"),
            ("alerts", f"{alerts_url}/v1/alerts"),
        ):
            try:
                response = client.get(url)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                err.write(
                    f"roadmap-monitor status: the {name} service does not answer at {url} "
                    f"({type(exc).__name__}); is the stack running (make dev)?\n"
                )
                return EXIT_UNREACHABLE
            answers[name] = response
    rows, evaluated = scorecard(answers["metrics"].text, answers["alerts"].json()["alerts"])
    render(rows, evaluated, out)
    return EXIT_OK
