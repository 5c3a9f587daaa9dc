"""``roadmap-monitor report``: write the progress report (one self-contained HTML file).

Reads each indicator's history from the metrics service (every replica's URL, when there are
several: their partitions are put together), the alerts from the alerts service, and the
indicators' definitions and the article's sentences from the roadmap file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TextIO

import httpx
from pydantic import TypeAdapter, ValidationError

from contracts.history import IndicatorHistory
from contracts.records import AlertTransition
from contracts.roadmap.loader import YamlFileError, load_roadmap
from services.report.combine import History, IncompleteHistory, combine
from services.report.page import render, summarise

EXIT_OK = 0
EXIT_UNAVAILABLE = 1
EXIT_BAD_INPUT = 2
_ALERTS = TypeAdapter(list[AlertTransition])


class ReportError(Exception):
    """What stops the report, said for the person who asked for it."""


def run_report(
    *,
    metrics_urls: Sequence[str],
    alerts_url: str,
    roadmap_path: Path,
    at: date | None,
    out: Path,
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Fetch, render and write ``out``; exit 0, 1 (a service cannot answer) or 2 (bad input)."""
    try:
        roadmap = load_roadmap(roadmap_path)
    except YamlFileError as exc:
        stderr.write(f"roadmap-monitor report: {exc}\n")
        return EXIT_BAD_INPUT
    urls = [u.rstrip("/") for u in metrics_urls]
    with httpx.Client(timeout=30) as client:
        try:
            histories = {i.id: _history(client, urls, i.id, at) for i in roadmap.indicators}
        except ReportError as exc:
            stderr.write(f"roadmap-monitor report: {exc}\n")
            return EXIT_UNAVAILABLE
        alerts = _alerts(client, alerts_url.rstrip("/"), stderr)
    day = at or max(h.evaluated_at for h in histories.values()).date()
    summaries = [summarise(i, histories[i.id]) for i in roadmap.indicators]
    page = render(
        roadmap,
        summaries,
        alerts,
        at=day,
        generated_at=datetime.now(UTC),
        sources=", ".join(urls),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    shown = "alerts unavailable" if alerts is None else f"{len(alerts)} alerts known"
    stdout.write(f"wrote {out}: {len(summaries)} indicators at {day.isoformat()}, {shown}\n")
    return EXIT_OK


def _history(client: httpx.Client, urls: Sequence[str], indicator: str, at: date | None) -> History:
    params = {"step": "month", **({"to": at.isoformat()} if at else {})}
    answers = []
    for url in urls:
        address = f"{url}/v1/indicators/{indicator}/history"
        try:
            response = client.get(address, params=params)
        except httpx.HTTPError as exc:
            raise ReportError(
                f"the metrics service does not answer at {url} ({type(exc).__name__}); is the "
                "stack running (make dev)?"
            ) from exc
        if response.status_code == 503:
            raise ReportError(f"the metrics service at {url} is still replaying; try again shortly")
        if response.status_code == 404:
            raise ReportError(
                f"the metrics service at {url} does not know {indicator!r}: does it run with "
                "the same roadmap file as --roadmap?"
            )
        if response.status_code != 200:
            raise ReportError(f"{address} answered {response.status_code}: {response.text[:200]}")
        try:
            answers.append(IndicatorHistory.model_validate_json(response.content))
        except ValidationError as exc:
            raise ReportError(f"{address} sent a history this report cannot read: {exc}") from exc
    try:
        return combine(answers)
    except IncompleteHistory as exc:
        raise ReportError(str(exc)) from exc


def _alerts(client: httpx.Client, url: str, stderr: TextIO) -> list[AlertTransition] | None:
    """The alerts service's alerts; None (and a warning) when it cannot be read."""
    try:
        response = client.get(f"{url}/v1/alerts")
        response.raise_for_status()
        return _ALERTS.validate_python(response.json()["alerts"])
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        stderr.write(
            f"roadmap-monitor report: the alerts service at {url} cannot be read "
            f"({type(exc).__name__}); the report says so and lists no alerts\n"
        )
        return None
