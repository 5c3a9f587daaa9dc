"""From a shortfall in the data to a webhook, through the shipped Prometheus rules and the
shipped Alertmanager routing, all real: ``roadmap-monitor dev --no-demo`` (wall clock),
Debian's Prometheus and Alertmanager, and a loopback receiver.

The test changes only what it must: loopback targets and ports, 1 s intervals, the receivers'
webhook URLs, and the rules regenerated from an alerts file whose ``for`` is 0 s (the shipped
one waits a day before a shortfall fires).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from contracts.alerts_file import load_alerts_file
from contracts.roadmap.loader import load_roadmap
from services.commands.rules import render_rules
from tests.support.alertmanager import running_alertmanager
from tests.support.dev_stack import DevPorts, running_dev
from tests.support.prometheus import JOBS as SCRAPE_JOBS
from tests.support.prometheus import running_prometheus, shipped_config
from tests.support.receiver import Received, RecordingReceiver
from tests.support.roadmap_events import hiring
from tests.support.services import REPO

pytestmark = pytest.mark.embedded  # the `make dev` stack, on the embedded broker

TIMEOUT_S = 150.0
JOBS = "jobs_created"


def _rules_firing_at_once(workdir: Path) -> Path:
    text = (REPO / "deploy" / "alerts.yaml").read_text()
    alerts = yaml.safe_load(text)
    alerts["lifecycle"]["defaults"] = {"for": "0s", "keep_firing_for": "0s"}
    alerts_path = workdir / "alerts.yaml"
    alerts_path.write_text(yaml.safe_dump(alerts))
    rules = workdir / "roadmap.rules.yml"
    rules.write_text(
        render_rules(load_roadmap(REPO / "deploy" / "roadmap.yaml"), load_alerts_file(alerts_path))
    )
    return rules


def _alertmanager_config(receiver: RecordingReceiver) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(
        (REPO / "deploy/alertmanager/alertmanager.yml").read_text()
    )
    for entry in config["receivers"]:
        for hook in entry.get("webhook_configs", []):
            hook["url"] = f"{receiver.url}/{entry['name']}"
    return config


def _about_jobs(request: Received) -> bool:
    """An Alertmanager notification to the industry office about jobs_created."""
    if request.path != "/industry-office":
        return False
    alerts = request.json().get("alerts", [])
    return any(a["labels"].get("indicator") == JOBS for a in alerts)


async def test_a_shortfall_reaches_alertmanager_and_the_owners_webhook(tmp_path: Path) -> None:
    """Ten jobs reported now, against several hundred expected by today on the linear
    trajectory: Prometheus's RoadmapTargetBehind for jobs_created fires with the roadmap's
    labels, Alertmanager holds it active, and the industry office's webhook receives it."""
    ports = DevPorts.choose()
    receiver = RecordingReceiver()
    rules = _rules_firing_at_once(tmp_path)
    now = datetime.now(UTC)
    report = hiring("e2e-jobs-1", "p-e2e", f"{now:%Y-%m}", 10, occurred=now)
    assert report.value is not None
    async with receiver.running():
        with (
            running_alertmanager(_alertmanager_config(receiver), tmp_path / "am") as alertmanager,
            running_dev(ports, tmp_path / "dev.log", "--no-demo") as dev,
        ):
            await asyncio.to_thread(dev.wait_for, "stop             Ctrl-C", timeout=TIMEOUT_S)
            config = shipped_config(
                {name: ports.of(name) for name in SCRAPE_JOBS.values()},
                rules=str(rules),
                alertmanager=alertmanager.url,
            )
            with running_prometheus(config, tmp_path / "prometheus") as prometheus:
                async with httpx.AsyncClient(timeout=10) as client:
                    posted = await client.post(
                        f"{ports.url('ingest')}/v1/events",
                        content=report.value,
                        headers={"Content-Type": "application/json"},
                    )
                assert posted.status_code == 202, posted.text
                deadline = time.monotonic() + TIMEOUT_S
                firing: list[dict[str, Any]] = []
                while time.monotonic() < deadline and not firing:
                    firing = await asyncio.to_thread(
                        prometheus.query,
                        f'ALERTS{{alertname="RoadmapTargetBehind",indicator="{JOBS}",'
                        'alertstate="firing"}',
                    )
                    await asyncio.sleep(1)
                assert firing, prometheus.log_tail()
                in_alertmanager = [
                    a
                    for a in await alertmanager.alerts(active=True)
                    if a["labels"].get("indicator") == JOBS
                ]
                await receiver.wait_for(
                    lambda requests: any(_about_jobs(r) for r in requests), timeout=TIMEOUT_S
                )
    labels = firing[0]["metric"]
    print(f"\nPrometheus fired {labels}; Alertmanager: {[a['status'] for a in in_alertmanager]}")
    # Only the identity the alerts service uses: no instance, job or service from the scrape.
    assert {k: v for k, v in labels.items() if k not in ("__name__", "alertstate")} == {
        "alertname": "RoadmapTargetBehind",
        "indicator": JOBS,
        "severity": "warning",
        "owner": "industry-office",
        "roadmap": "kz-by-2025-2029",
    }
    assert [a["status"]["state"] for a in in_alertmanager] == ["active"]
    notification = next(r for r in receiver.requests if _about_jobs(r)).json()
    assert notification["status"] == "firing"
    assert [a["labels"]["alertname"] for a in notification["alerts"]] == ["RoadmapTargetBehind"]
    assert notification["alerts"][0]["labels"]["indicator"] == JOBS
