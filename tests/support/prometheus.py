"""A real Prometheus (Debian's ``prometheus`` binary) for a test, on loopback, with the shipped
configuration whose targets and paths the test adjusts."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from services.common.embedded_broker import die_with_parent, free_port
from tests.support.services import REPO


@dataclass(frozen=True, slots=True)
class RunningPrometheus:
    url: str
    log_path: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        """``/api/v1/query``: the result vector (or scalar as one item); raises on an error."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert body.get("status") == "success", (expr, body)
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


JOBS = {"roadmap-ingest": "ingest", "roadmap-metrics": "metrics", "roadmap-alerts": "alerts"}
"""The shipped configuration's scrape jobs, and the service each scrapes."""


def shipped_config(
    ports: Mapping[str, int], *, rules: str, alertmanager: str | None = None
) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with only what a test must change: the services'
    loopback ports, 1 s intervals, the rule files, and Alertmanager's address (or none)."""
    config: dict[str, Any] = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [rules]
    if alertmanager is None:
        config.pop("alerting", None)
    else:
        targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]
        targets["targets"] = [alertmanager.removeprefix("http://")]
    config["scrape_configs"] = [j for j in config["scrape_configs"] if j["job_name"] in JOBS]
    for job in config["scrape_configs"]:
        job["static_configs"][0]["targets"] = [f"127.0.0.1:{ports[JOBS[job['job_name']]]}"]
    return config


def find_prometheus() -> str:
    found = shutil.which("prometheus")
    assert found, "prometheus is missing: install Debian's 'prometheus' package (make test does)"
    return found


@contextlib.contextmanager
def running_prometheus(config: dict[str, Any], workdir: Path) -> Iterator[RunningPrometheus]:
    """Run Prometheus with ``config`` until the block ends; yield it once ``/-/ready`` is 200."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    log_path = workdir / "prometheus.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                find_prometheus(),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "prometheus not ready in 30s"
            time.sleep(0.2)
        yield RunningPrometheus(url, log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
