"""The stack as operators see it: a real Prometheus scraping the three services with the shipped
configuration and rules, and every Grafana panel's query answered with data.

``roadmap-monitor dev`` runs the demo on the embedded broker; Prometheus (Debian's binary) gets
deploy/prometheus/prometheus.yml with only the targets, the rule path and the intervals changed
for the test (loopback ports, 1 s).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from contracts.roadmap.loader import load_roadmap
from services.commands.dashboards import dashboards
from tests.support.dev_stack import DevPorts, running_dev
from tests.support.prometheus import JOBS, running_prometheus, shipped_config
from tests.support.services import REPO

pytestmark = pytest.mark.embedded  # the `make dev` stack, on the embedded broker

READY_TIMEOUT_S = 120.0
SERVICES = JOBS


def test_every_target_is_up_and_every_panel_has_data(tmp_path: Path) -> None:
    """All three targets are ``up``; after the demo story has been told, every query of every
    dashboard returns at least one series."""
    ports = DevPorts.choose()
    roadmap = load_roadmap(REPO / "deploy" / "roadmap.yaml")
    queries = [
        (f"{name}: {panel['title']}", target["expr"])
        for name, dashboard in dashboards(roadmap).items()
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]
    with running_dev(ports, tmp_path / "dev.log", "--speed", "200") as dev:
        dev.wait_for("stop             Ctrl-C", timeout=READY_TIMEOUT_S)
        config = shipped_config(
            {name: ports.of(name) for name in SERVICES.values()},
            rules=str(REPO / "deploy/prometheus/rules/*.yml"),
        )
        with running_prometheus(config, tmp_path / "prometheus") as prometheus:
            dev.wait_for("demo feed finished", timeout=READY_TIMEOUT_S)
            deadline = time.monotonic() + 60
            empty: list[str] = []
            while time.monotonic() < deadline:
                up = {r["metric"]["job"]: r["value"][1] for r in prometheus.query("up")}
                empty = [where for where, expr in queries if not prometheus.query(expr)]
                if up == dict.fromkeys(SERVICES, "1") and not empty:
                    break
                time.sleep(2)
            print(f"\n{len(queries)} panel queries, targets up: {up}, without data: {empty}")
            assert up == dict.fromkeys(SERVICES, "1"), prometheus.log_tail()
            assert empty == []
