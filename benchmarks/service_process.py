"""Run a service as its own process for a benchmark, and read counters from its ``/metrics``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from asyncio.subprocess import Process
from collections.abc import Mapping
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.common.config import KafkaSettings
from services.common.embedded_broker import die_with_parent


async def spawn(
    service: str, kafka: KafkaSettings, settings: Mapping[str, str], log: Path
) -> Process:
    """``roadmap-monitor run SERVICE`` on ``kafka``, with ``<SERVICE>_<NAME>`` settings."""
    prefix = service.upper()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "KAFKA_ENABLE_IDEMPOTENCE": str(kafka.enable_idempotence).lower(),
        f"{prefix}_LOG_LEVEL": "WARNING",
        **{f"{prefix}_{name}": value for name, value in settings.items()},
    }
    cli = Path(sys.executable).with_name("roadmap-monitor")
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            str(cli),
            "run",
            service,
            env=env,
            stdout=out,
            stderr=out,
            # A benchmark killed mid-run (Ctrl-C twice, SIGKILL) took its services with it
            # only by chance; they kept running and holding ports.
            preexec_fn=die_with_parent,  # only prctl between fork and exec
        )


async def until_ready(
    process: Process,
    client: httpx.AsyncClient,
    *,
    log: Path,
    within_s: float = 120.0,
    poll_s: float = 0.2,
) -> httpx.Response:
    """Poll ``/readyz`` until it answers 200 and return that answer; ``RuntimeError`` naming
    ``log`` if the process exits or ``within_s`` passes first."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"the service exited with {process.returncode}; see {log}")
        try:
            response = await client.get("/readyz")
        except httpx.HTTPError:
            pass
        else:
            if response.status_code == 200:
                return response
        await asyncio.sleep(poll_s)
    raise RuntimeError(f"the service was not ready after {within_s:.0f} s; see {log}")


STOP_WITHIN_S = 60


async def stop(process: Process) -> None:
    """SIGTERM (if still running) and wait up to ``STOP_WITHIN_S`` for the exit."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.wait(), timeout=STOP_WITHIN_S)


def counter_total(metrics_text: str, family_name: str) -> int:
    """The sum over every label set of counter ``family_name`` (without ``_total``)."""
    total = 0.0
    for family in text_string_to_metric_families(metrics_text):
        if family.name == family_name:
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return int(total)
