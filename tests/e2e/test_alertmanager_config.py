"""The shipped Alertmanager configuration (deploy/alertmanager/alertmanager.yml), checked by
Alertmanager's own tools and by a real Alertmanager: routing by severity and owner,
``RoadmapDeadlineMissed`` inhibiting ``RoadmapTargetBehind`` and ``RoadmapTargetBehind``
inhibiting ``RoadmapTargetAtRisk`` for the same indicator.

Only the receivers' webhook URLs are changed by the test (to a loopback receiver)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from contracts.records import AlertName, AlertState, AlertTransition
from services.alerts.payloads import alertmanager_alerts
from tests.support.alertmanager import running_alertmanager
from tests.support.receiver import RecordingReceiver
from tests.support.services import REPO

CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("amtool")
    assert found, "amtool is missing: install Debian's 'prometheus-alertmanager' package"
    return subprocess.run([found, *args], capture_output=True, text=True, check=False)


def test_amtool_accepts_the_configuration() -> None:
    """``amtool check-config`` passes: a route tree, 2 inhibitions, 6 receivers."""
    result = _amtool("check-config", str(CONFIG))
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert " - 2 inhibit rules" in result.stdout


def test_routes_go_to_the_owner_and_critical_also_to_on_call() -> None:
    """A critical alert of the industry office reaches on-call and the office; an info alert of
    the trade ministry only that ministry; a platform alert the platform team; a stalled
    pipeline (critical, platform) pages on-call and the platform team."""
    stalled = ("alertname=RoadmapPipelineStalled", "indicator=pipeline_progress")
    cases = {
        ("severity=critical", "owner=industry-office"): "roadmap-oncall,industry-office",
        (*stalled, "severity=critical", "owner=platform"): "roadmap-oncall,platform",
        ("severity=info", "owner=trade-ministry"): "trade-ministry",
        ("severity=warning", "owner=platform"): "platform",
        ("severity=warning", "owner=nobody"): "roadmap-default",
    }
    for labels, expected in cases.items():
        result = _amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == expected, (labels, result.stdout)


def _record(
    alertname: AlertName,
    at: datetime,
    *,
    indicator: str = "jobs_created",
    severity: str = "warning",
    owner: str = "industry-office",
) -> AlertTransition:
    labels = {
        "alertname": alertname.value,
        "indicator": indicator,
        "severity": severity,
        "owner": owner,
        "roadmap": "kz-by-2025-2029",
    }
    return AlertTransition(
        alertname=alertname,
        state=AlertState.FIRING,
        labels=labels,
        annotations={"summary": f"{alertname.value} for {indicator}"},
        since=at,
        started_at=at,
        at=at,
        dedup_key=f"e2e-{alertname.value}-{indicator}",
    )


async def _wait_for(url: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        while True:
            alerts: list[dict[str, Any]] = (await client.get("/api/v2/alerts")).json()
            settled = all(a["status"]["state"] != "unprocessed" for a in alerts)
            if (len(alerts) >= count and settled) or time.monotonic() > deadline:
                return alerts
            await asyncio.sleep(0.2)


async def _posted(tmp_path: Path, records: list[AlertTransition]) -> list[dict[str, Any]]:
    """``records`` posted to a real Alertmanager running the shipped configuration (receivers
    pointed at a loopback receiver), as the alerts service posts them; what it lists then."""
    receiver = RecordingReceiver()
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    for entry in config["receivers"]:
        for hook in entry.get("webhook_configs", []):
            hook["url"] = f"{receiver.url}/{entry['name']}"
    alerts = [
        alert
        for record in records
        for alert in alertmanager_alerts(
            record,
            generator_url="http://127.0.0.1:8003/v1/alerts",
            repeat_interval=timedelta(minutes=1),
        )
    ]
    async with receiver.running():
        with running_alertmanager(config, tmp_path / "alertmanager") as alertmanager:
            async with httpx.AsyncClient(base_url=alertmanager.url, timeout=5) as client:
                posted = await client.post("/api/v2/alerts", json=alerts)
            assert posted.status_code == 200, posted.text
            return await _wait_for(alertmanager.url, len(records))


async def test_deadline_missed_inhibits_target_behind_for_the_same_indicator(
    tmp_path: Path,
) -> None:
    """Both alerts for jobs_created posted as the alerts service posts them: Alertmanager keeps
    RoadmapDeadlineMissed active (routed to industry-office) and suppresses RoadmapTargetBehind,
    naming the inhibiting alert's fingerprint."""
    now = datetime.now(UTC)
    listed = await _posted(
        tmp_path,
        [_record(AlertName.DEADLINE_MISSED, now), _record(AlertName.TARGET_BEHIND, now)],
    )
    by_name = {a["labels"]["alertname"]: a for a in listed}
    print({name: a["status"] for name, a in by_name.items()})
    missed = by_name["RoadmapDeadlineMissed"]
    behind = by_name["RoadmapTargetBehind"]
    assert missed["status"]["state"] == "active"
    assert [r["name"] for r in missed["receivers"]] == ["industry-office"]
    assert behind["status"]["state"] == "suppressed"
    assert behind["status"]["inhibitedBy"] == [missed["fingerprint"]]


async def test_target_behind_inhibits_at_risk_for_the_same_indicator_only(tmp_path: Path) -> None:
    """jobs_created behind (critical here) and at risk (a warning): the early warning is
    suppressed by the alert that says more, whatever their severities; road_freight_tonnes at
    risk, with nothing behind, stays active and reaches its owner."""
    now = datetime.now(UTC)
    records = [
        _record(AlertName.TARGET_BEHIND, now, severity="critical"),
        _record(AlertName.TARGET_AT_RISK, now),
        _record(
            AlertName.TARGET_AT_RISK,
            now,
            indicator="road_freight_tonnes",
            owner="transport-ministry",
        ),
    ]
    listed = await _posted(tmp_path, records)
    by_key = {(a["labels"]["alertname"], a["labels"]["indicator"]): a for a in listed}
    behind = by_key["RoadmapTargetBehind", "jobs_created"]
    at_risk = by_key["RoadmapTargetAtRisk", "jobs_created"]
    other = by_key["RoadmapTargetAtRisk", "road_freight_tonnes"]
    assert behind["status"]["state"] == "active"
    assert at_risk["status"]["state"] == "suppressed"
    assert at_risk["status"]["inhibitedBy"] == [behind["fingerprint"]]
    assert other["status"]["state"] == "active"
    assert [r["name"] for r in other["receivers"]] == ["transport-ministry"]
