"""``roadmap-monitor dashboards``: Grafana dashboards generated from the roadmap file.

Four dashboards, written to ``deploy/grafana/dashboards/`` and provisioned by Grafana:
- the roadmap scorecard: per indicator its value, expected value, target, progress, deadline
  and alert state;
- trade: freight by corridor direction, mode and commodity;
- projects and jobs: projects and investment by stage, jobs by sector;
- pipeline health: throughput, DLQ by reason, consumer lag, stalled partitions, latency,
  notifications.
Built with Grafana's own typed builders (``grafana-foundation-sdk``, the flavour of the Grafana
the compose file runs), which know the schema. Every query uses only metrics the services export
(a unit test checks this), and ``--check`` exits 1 when the committed files differ from what the
roadmap file generates.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from grafana_foundation_sdk.builders import (
    bargauge,
    dashboard,
    gauge,
    prometheus,
    stat,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

from contracts.roadmap.loader import YamlFileError, load_roadmap
from contracts.roadmap.model import Indicator, RoadmapFile
from contracts.roadmap.projection import is_projected

DEFAULT_DIR = Path("deploy/grafana/dashboards")
DATASOURCE = DataSourceRef(type_val="prometheus", uid="roadmap-prometheus")
WIDTH = 24

PanelBuilder = timeseries.Panel | stat.Panel | gauge.Panel | bargauge.Panel
_KINDS: dict[str, Callable[[], PanelBuilder]] = {
    "timeseries": timeseries.Panel,
    "stat": stat.Panel,
    "gauge": gauge.Panel,
    "bargauge": bargauge.Panel,
}


def _unit(indicator: Indicator) -> str:
    return {"ratio": "percentunit", "USD": "currencyUSD"}.get(indicator.unit, "short")


def _panel(
    title: str,
    exprs: list[tuple[str, str]],
    *,
    kind: str = "timeseries",
    unit: str = "short",
    grid: tuple[int, int, int, int],
    description: str = "",
) -> PanelBuilder:
    """One panel of Grafana's own builders: its queries on the roadmap's Prometheus, each with
    the legend it draws, at ``grid`` (x, y, width, height)."""
    x, y, w, h = grid
    panel = (
        _KINDS[kind]()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .grid_pos(GridPos(x=x, y=y, w=w, h=h))
        .unit(unit)
    )
    for index, (expr, legend) in enumerate(exprs):
        query = prometheus.Dataquery().expr(expr).legend_format(legend).datasource(DATASOURCE)
        panel = panel.with_target(query.ref_id(chr(ord("A") + index)))
    return panel


def _dashboard(uid: str, title: str, panels: list[PanelBuilder]) -> dict[str, Any]:
    """The dashboard's JSON model, as the SDK encodes it for the Grafana it targets."""
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .tags(["roadmap"])
        .timezone("utc")
        .time("now-7d", "now")
        .refresh("1m")
    )
    for number, panel in enumerate(panels, start=1):
        board = board.with_panel(panel.id(number))
    model: dict[str, Any] = json.loads(JSONEncoder().encode(board.build()))
    return model


def scorecard(roadmap: RoadmapFile) -> dict[str, Any]:
    panels = []
    for row, indicator in enumerate(roadmap.indicators):
        y = row * 5
        selector = f'{{indicator="{indicator.id}"}}'
        unit = _unit(indicator)
        series = [
            (f"roadmap_indicator_value{selector}", "actual"),
            (f"roadmap_indicator_expected{selector}", "expected"),
            (f"roadmap_indicator_target{selector}", "target"),
        ]
        if is_projected(indicator):  # where the recent pace leads, as it moves
            series.append((f"roadmap_indicator_projected{selector}", "projected at the deadline"))
        panels += [
            _panel(
                f"{indicator.title}: actual, expected, target",
                series,
                unit=unit,
                grid=(0, y, 12, 5),
                description=indicator.source,
            ),
            _panel(
                "progress",
                [(f"roadmap_indicator_progress_ratio{selector}", "progress")],
                kind="gauge",
                unit="percentunit",
                grid=(12, y, 4, 5),
            ),
            _panel(
                "deadline",
                [(f"roadmap_indicator_deadline_timestamp_seconds{selector} * 1000", "deadline")],
                kind="stat",
                unit="dateTimeAsIsoNoDateIfToday",
                grid=(16, y, 4, 5),
            ),
            _panel(
                "open alerts",
                [
                    (
                        f'sum(ALERTS{{indicator="{indicator.id}", alertstate="firing"}})'
                        " or vector(0)",
                        "firing (Prometheus rules)",
                    ),
                    (
                        f"roadmap:indicator_behind:bool{selector}",
                        "behind now",
                    ),
                ],
                kind="stat",
                grid=(20, y, 4, 5),
            ),
        ]
    return _dashboard("roadmap-scorecard", f"{roadmap.title}: scorecard", panels)


def trade() -> dict[str, Any]:
    return _dashboard(
        "roadmap-trade",
        "Roadmap: trade",
        [
            _panel(
                "Tonnes by direction",
                [("sum by (direction) (roadmap_freight_tonnes)", "{{direction}}")],
                grid=(0, 0, 12, 8),
            ),
            _panel(
                "Tonnes by mode",
                [("sum by (mode) (roadmap_freight_tonnes)", "{{mode}}")],
                grid=(12, 0, 12, 8),
            ),
            _panel(
                "Tonnes by commodity",
                [("sum by (commodity) (roadmap_freight_tonnes)", "{{commodity}}")],
                grid=(0, 8, 12, 8),
            ),
            _panel(
                "Value by commodity",
                [("sum by (commodity) (roadmap_freight_value_usd)", "{{commodity}}")],
                unit="currencyUSD",
                grid=(12, 8, 12, 8),
            ),
            _panel(
                "Shipments held",
                [("sum(roadmap_freight_shipments)", "shipments")],
                kind="stat",
                grid=(0, 16, 8, 5),
            ),
        ],
    )


def projects_and_jobs() -> dict[str, Any]:
    return _dashboard(
        "roadmap-projects-jobs",
        "Roadmap: projects and jobs",
        [
            _panel(
                "Projects by stage",
                [("roadmap_projects", "{{stage}}")],
                kind="bargauge",
                grid=(0, 0, 12, 8),
            ),
            _panel(
                "Investment by stage",
                [("roadmap_projects_investment_usd", "{{stage}}")],
                kind="bargauge",
                unit="currencyUSD",
                grid=(12, 0, 12, 8),
            ),
            _panel(
                "Net jobs by sector",
                [("roadmap_jobs", "{{sector}}")],
                kind="bargauge",
                grid=(0, 8, 12, 8),
            ),
            _panel(
                "Jobs created against the trajectory",
                [
                    ('roadmap_indicator_value{indicator="jobs_created"}', "actual"),
                    ('roadmap_indicator_expected{indicator="jobs_created"}', "expected"),
                ],
                grid=(12, 8, 12, 8),
            ),
        ],
    )


def _p99(histogram: str, window: str) -> str:
    return f"histogram_quantile(0.99, sum by (le) (rate({histogram}_bucket{window})))"


def _by_receiver(counter: str, window: str) -> str:
    return f"sum by (receiver) (increase({counter}{window}))"


def pipeline() -> dict[str, Any]:
    rate = "[5m]"
    return _dashboard(
        "roadmap-pipeline",
        "Roadmap: pipeline health",
        [
            _panel(
                "Events in, by type",
                [(f"sum by (type) (rate(roadmap_ingest_events_received_total{rate}))", "{{type}}")],
                unit="reqps",
                grid=(0, 0, 12, 8),
            ),
            _panel(
                "Accepted, duplicate, rejected",
                [
                    (f"sum(rate(roadmap_ingest_events_accepted_total{rate}))", "accepted"),
                    (f"sum(rate(roadmap_ingest_events_duplicate_total{rate}))", "duplicate"),
                    (f"sum(rate(roadmap_ingest_events_rejected_total{rate}))", "rejected"),
                ],
                unit="reqps",
                grid=(12, 0, 12, 8),
            ),
            _panel(
                "DLQ by reason",
                [
                    (
                        f"sum by (reason) (increase(roadmap_ingest_events_rejected_total{rate}))",
                        "{{reason}}",
                    )
                ],
                grid=(0, 8, 12, 8),
            ),
            _panel(
                "DLQ share",
                [("roadmap:ingest_dlq:ratio_10m", "dlq share (10m)")],
                unit="percentunit",
                grid=(12, 8, 12, 8),
            ),
            _panel(
                "Consumer lag",
                [("sum by (service) (roadmap_consumer_lag_messages)", "{{service}}")],
                grid=(0, 16, 12, 8),
            ),
            _panel(
                "Latency p99 (broker timestamp to outcome)",
                [
                    (
                        _p99("roadmap_ingest_event_latency_seconds", rate),
                        "ingest",
                    ),
                    (
                        _p99("roadmap_metrics_event_latency_seconds", rate),
                        "metrics",
                    ),
                ],
                unit="s",
                grid=(12, 16, 12, 8),
            ),
            _panel(
                "Notifications",
                [
                    (
                        _by_receiver("roadmap_alerts_notifications_sent_total", rate),
                        "sent {{receiver}}",
                    ),
                    (
                        _by_receiver("roadmap_alerts_notifications_failed_total", rate),
                        "failed {{receiver}}",
                    ),
                ],
                grid=(0, 24, 12, 8),
            ),
            _panel(
                "Open alerts (alerts service)",
                [("sum by (state) (roadmap_alerts_active)", "{{state}}")],
                kind="stat",
                grid=(12, 24, 12, 8),
            ),
            _panel(
                "Stalled partitions (records to read, no progress)",
                [("sum by (service) (roadmap_consumer_stalled)", "{{service}}")],
                kind="stat",
                grid=(0, 32, 24, 6),
            ),
            _panel(
                "Events in, by publisher (kafka: upstream topics)",
                [
                    (
                        f"sum by (publisher) (rate(roadmap_ingest_events_received_total{rate}))",
                        "{{publisher}}",
                    )
                ],
                unit="reqps",
                grid=(0, 38, 12, 8),
            ),
            _panel(
                "Refused as out of scope (forbidden), by publisher",
                [
                    (
                        "sum by (publisher) (increase(roadmap_ingest_events_rejected_total"
                        f'{{reason="forbidden"}}{rate}))',
                        "{{publisher}}",
                    )
                ],
                grid=(12, 38, 12, 8),
            ),
        ],
    )


def dashboards(roadmap: RoadmapFile) -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON model."""
    return {
        "scorecard.json": scorecard(roadmap),
        "trade.json": trade(),
        "projects-jobs.json": projects_and_jobs(),
        "pipeline.json": pipeline(),
    }


def render(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def run_dashboards(roadmap_path: Path, out_dir: Path, *, check: bool, stdout: TextIO) -> int:
    """Write the dashboards (or with ``check``, compare); exit 0, 1 (stale) or 2."""
    try:
        roadmap = load_roadmap(roadmap_path)
    except YamlFileError as exc:
        stdout.write(f"roadmap-monitor dashboards: {exc}\n")
        return 2
    stale = []
    for name, model in dashboards(roadmap).items():
        path = out_dir / name
        text = render(model)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        stdout.write(f"wrote {path}\n")
    if stale:
        stdout.write(f"stale: {', '.join(stale)}: run `roadmap-monitor dashboards`\n")
        return 1
    return 0
