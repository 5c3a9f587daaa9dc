"""The product's services as ``roadmap-monitor run`` processes, for tests that kill, cut or
starve them; and reading their ``/metrics`` as text."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from tests.support.services import spawn_service

SERVICES = ("ingest", "metrics", "alerts")


@dataclass
class ServiceProcess:
    name: str
    base_url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.log_path.name} (last {len(text)} lines) ---\n" + "\n".join(text)


def service_env(name: str, kafka: KafkaSettings, run: str) -> tuple[dict[str, str], str]:
    """Environment for service ``name`` on ``kafka`` (its prefix and a free port), consumer
    groups named after ``run``; and the service's base URL."""
    port = free_port()
    prefix = name.upper()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        f"{prefix}_HTTP_PORT": str(port),
        f"{prefix}_LOG_FORMAT": "text",
    }
    if name == "alerts":
        env["ALERTS_DELIVERY_GROUP_ID"] = f"{run}-alerts-delivery"
        env["ALERTS_EXTERNAL_URL"] = f"http://127.0.0.1:{port}"
        env["ALERTS_WATCH_GROUPS"] = f"ingest={run}-ingest,metrics={run}-metrics"
    else:
        env[f"{prefix}_GROUP_ID"] = f"{run}-{name}"
    return env, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def running_services(
    kafka: KafkaSettings,
    tmp_path: Path,
    run: str,
    *,
    names: Sequence[str] = SERVICES,
    extra_env: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[dict[str, ServiceProcess]]:
    """The services ``names`` as processes (``extra_env`` per name on top of ``service_env``);
    their log tails are printed when the block fails; each is killed at the end if running."""
    with ExitStack() as stack:
        services: dict[str, ServiceProcess] = {}
        for name in names:
            env, base_url = service_env(name, kafka, run)
            env.update((extra_env or {}).get(name, {}))
            log_path = tmp_path / f"{name}.log"
            process = stack.enter_context(spawn_service(name, env, log_path=log_path))
            services[name] = ServiceProcess(name, base_url, log_path, process)
        try:
            yield services
        except BaseException:
            for service in services.values():
                print(service.tail())
            raise


def metric_samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called ``name`` in a /metrics answer, by its sorted labels."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def metric_total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` that carry ``labels``."""
    return sum(
        value
        for key, value in metric_samples(text, name).items()
        if all((k, v) in key for k, v in labels.items())
    )


async def scrape(base_url: str) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{base_url}/metrics")
        response.raise_for_status()
        return response.text


async def folded_events(metrics_url: str, count: int, *, timeout: float = 60.0) -> float:
    """Metrics' ``roadmap_metrics_events_total`` once it reaches ``count`` (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    folded = metric_total(await scrape(metrics_url), "roadmap_metrics_events_total")
    while folded < count and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        folded = metric_total(await scrape(metrics_url), "roadmap_metrics_events_total")
    return folded
