"""The progress report as a person sees it: the demo story told by ``roadmap-monitor dev``, the
report written by ``roadmap-monitor report`` from the running services, then opened in headless
Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by Selenium) and photographed.

The browser lays the page out, so what is checked is what it drew: every indicator's chart has
its series with the expected number of points and a real extent on the page, not an empty
frame.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from contracts.roadmap.loader import load_roadmap
from tests.support.dev_stack import DevPorts, running_dev
from tests.support.services import REPO

pytestmark = pytest.mark.embedded  # the `make dev` stack, on the embedded broker

READY_TIMEOUT_S = 120.0
REPORT_AT = "2027-01-15"
"""In the demo's hiring slump: jobs are behind their trajectory then."""
MONTHS_SHOWN = 25
"""The month ends of January 2025 to December 2026, and January 15."""
MONTHS_TO_DEADLINE = 60
"""The trajectory's points: every month end of 2025 to 2029."""
PROJECTED = {"jobs_created", "road_freight_tonnes"}

DRAWN = """
return [...document.querySelectorAll('section.indicator')].map(section => {
  const svg = section.querySelector('svg.chart');
  const series = {};
  for (const element of svg.querySelectorAll('[data-series]')) {
    const box = element.getBBox();
    series[element.dataset.series] = {
      points: element.points ? element.points.numberOfItems : null,
      width: box.width,
      height: box.height,
    };
  }
  return {
    id: section.id,
    status: section.querySelector('h2 .status').textContent,
    shown: svg.getBoundingClientRect().width,
    dots: svg.querySelectorAll('circle.actual-point').length,
    series: series,
  };
});
"""


def _tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: install Debian's 'chromium' and 'chromium-driver' packages"
    return found


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium must not fetch a browser or a driver
    options = Options()
    options.binary_location = _tool("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,1400"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(_tool("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_demo_story_s_report_draws_every_chart(tmp_path: Path, browser: Any) -> None:
    ports = DevPorts.choose()
    report = tmp_path / "report.html"
    with running_dev(ports, tmp_path / "dev.log", "--speed", "200") as dev:
        dev.wait_for("demo feed finished", timeout=READY_TIMEOUT_S)
        written = subprocess.run(
            [
                str(REPO / ".venv" / "bin" / "roadmap-monitor"),
                "report",
                "--at",
                REPORT_AT,
                "--out",
                str(report),
                "--metrics-url",
                ports.url("metrics"),
                "--alerts-url",
                ports.url("alerts"),
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
            timeout=120,
        )
    assert written.returncode == 0, written.stderr
    print(f"\n{written.stdout.strip()}")
    html = report.read_text(encoding="utf-8")
    assert "<script" not in html
    assert ' src="' not in html  # no image, font or script from anywhere
    assert 'href="http' not in html

    browser.get(report.as_uri())
    charts = browser.execute_script(DRAWN)
    screenshot = tmp_path / "report.png"
    browser.save_screenshot(str(screenshot))
    print(f"screenshot: {screenshot} ({screenshot.stat().st_size:,} bytes)")
    for chart in charts:
        print(chart["id"], chart["status"], {k: v["points"] for k, v in chart["series"].items()})

    roadmap = load_roadmap(REPO / "deploy" / "roadmap.yaml")
    assert [c["id"] for c in charts] == [i.id for i in roadmap.indicators]
    for chart in charts:
        series = chart["series"]
        assert chart["shown"] > 500, chart  # laid out at a readable width
        assert series["actual"]["points"] == MONTHS_SHOWN, chart
        assert chart["dots"] == MONTHS_SHOWN, chart
        assert series["actual"]["width"] > 150, chart  # two years of a five-year axis
        assert series["trajectory"]["points"] == MONTHS_TO_DEADLINE, chart
        assert series["trajectory"]["width"] > 500, chart
        assert series["target"]["width"] > 500, chart
        assert series["deadline"]["height"] > 150, chart
        assert ("projection" in series) is (chart["id"] in PROJECTED), chart
        if chart["id"] in PROJECTED:
            assert series["projection"]["width"] > 200, chart  # from January 2027 to the end
    status = {c["id"]: c["status"] for c in charts}
    assert status["jobs_created"] == "behind"  # the slump
    assert screenshot.stat().st_size > 50_000  # a page with charts, not a blank frame
