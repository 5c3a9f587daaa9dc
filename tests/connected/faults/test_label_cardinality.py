"""Fault 6: a burst of 1,000 distinct unknown commodities (and sectors, and corridors) leaves the
number of metric series bounded.

ingest and metrics run as real processes (``roadmap-monitor run ingest|metrics``) on their own
topic prefix and consumer groups. Valid events go to the upstream topics, as an upstream system
would send them. The breakdown labels the events feed are ``commodity`` (free snake_case codes),
``sector`` (free snake_case codes, via a project's milestone, for ``roadmap_jobs``) and
``direction`` (free ISO country pairs); ``mode`` and ``stage`` are closed enums. The metrics
service keeps each of the free ones to its configured list plus ``other`` (``unknown`` for jobs
of a project with no milestone yet), so what is unknown must be summed under ``other`` exactly,
what is known stays exact, and neither service's /metrics grows with the number of codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contracts.events import EventType
from contracts.topics import UPSTREAM_TOPIC_BY_TYPE
from services.common.config import KafkaSettings
from services.common.embedded_broker import free_port
from services.metrics.settings import DEFAULT_COMMODITIES, DEFAULT_SECTORS
from tests.support.alerts_stack import Samples
from tests.support.fault_report import FaultReport
from tests.support.kafka import RealBroker, unique_name
from tests.support.roadmap_events import hiring, milestone, shipment
from tests.support.services import spawn_service, wait_ready
from tests.support.streams import Upstream, publish

TIMEOUT = 180.0
"""Generous: two processes joining groups on a loaded machine with a shared broker."""

UNKNOWN_COMMODITIES = 1000
UNKNOWN_SECTORS = 200
FOREIGN_ROUTES = (("UZ", "TJ"), ("RU", "CN"), ("DE", "FR"), ("KZ", "RU"), ("BY", "PL"))
MODES = ("road", "rail", "air", "multimodal")
DIRECTIONS = ("KZ_to_BY", "BY_to_KZ", "other")
FREIGHT = ("roadmap_freight_shipments", "roadmap_freight_tonnes", "roadmap_freight_value_usd")
FIRST_DAY = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

Key = tuple[str, str, str]
"""(direction, mode, commodity) label values of a freight series."""


@dataclass
class Expected:
    """What the freight breakdown and jobs-by-sector must show, summed from the inputs."""

    freight: dict[Key, list[Decimal]]
    """key -> [shipments, tonnes, value_usd]."""
    jobs: dict[str, int]
    """sector label -> net jobs."""

    @classmethod
    def empty(cls) -> Expected:
        return cls(defaultdict(lambda: [Decimal(0)] * 3), defaultdict(int))


def _direction(origin: str, destination: str) -> str:
    if (origin, destination) == ("KZ", "BY"):
        return "KZ_to_BY"
    if (origin, destination) == ("BY", "KZ"):
        return "BY_to_KZ"
    return "other"


class Feed:
    """Builds events with unique ids and keeps the expected breakdowns next to them."""

    def __init__(self, run: str) -> None:
        self.run = run
        self.expected = Expected.empty()
        self._n = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    def shipment(
        self,
        commodity: str,
        label: str,
        *,
        route: tuple[str, str] = ("KZ", "BY"),
        mode: str = "road",
    ) -> Upstream:
        """One shipment of ``commodity``, expected under the ``label`` commodity series."""
        n = self._next()
        tonnes = Decimal(n % 97 + 1) + Decimal(n % 1000) / 1000  # three decimals, exact
        value = Decimal(n * 37 % 100_000) + Decimal(n % 100) / 100
        day = FIRST_DAY + timedelta(hours=n)
        row = self.expected.freight[(_direction(*route), mode, label)]
        row[0] += 1
        row[1] += tonnes
        row[2] += value
        return shipment(
            f"{self.run}-sh-{n}",
            f"{self.run}-SH-{n}",
            occurred=day,
            route=route,
            mode=mode,
            commodity=commodity,
            tonnes=str(tonnes),
            value_usd=str(value),
            shipped_on=day.date(),
        )

    def project(self, sector: str, label: str, jobs: int) -> list[Upstream]:
        """A project in ``sector`` and one hiring report of ``jobs``, expected under ``label``."""
        n = self._next()
        project_id = f"{self.run}-P-{n}"
        day = FIRST_DAY + timedelta(hours=n)
        self.expected.jobs[label] += jobs
        return [
            milestone(
                f"{self.run}-pm-{n}",
                project_id,
                occurred=day,
                stage="construction",
                sector=sector,
                joint_venture=False,
                investment_usd=1000 + n,
                reached_on=day.date(),
            ),
            hiring(f"{self.run}-hr-{n}", project_id, "2025-06", jobs, occurred=day),
        ]


def _baseline(feed: Feed) -> list[Upstream]:
    """Each known commodity (one in upper case, folded to lower case) and sector once, and one
    unknown commodity and sector, so every label ``other`` can take exists before the burst."""
    messages = [feed.shipment(c, c) for c in DEFAULT_COMMODITIES]
    messages.append(feed.shipment("WHEAT_FLOUR", "wheat_flour"))
    messages.append(feed.shipment("baseline_unknown_goods", "other"))
    for sector in DEFAULT_SECTORS:
        messages += feed.project(sector, sector, 5)
    messages += feed.project("baseline_unknown_sector", "other", 3)
    return messages


def _burst(feed: Feed) -> list[Upstream]:
    """1,000 distinct unknown commodities over every mode and direction, known commodities
    between them, 200 unknown sectors with their hiring, and shipments on five foreign
    corridors."""
    messages: list[Upstream] = []
    for n in range(UNKNOWN_COMMODITIES):
        route = [("KZ", "BY"), ("BY", "KZ"), FOREIGN_ROUTES[n % len(FOREIGN_ROUTES)]][n % 3]
        messages.append(
            feed.shipment(f"novel_goods_{n:04d}", "other", route=route, mode=MODES[n % 4])
        )
        if n % 20 == 0:
            known = DEFAULT_COMMODITIES[n // 20 % len(DEFAULT_COMMODITIES)]
            messages.append(feed.shipment(known, known, mode=MODES[n // 20 % 4]))
    for n in range(UNKNOWN_SECTORS):
        messages += feed.project(f"novel_sector_{n:03d}", "other", n % 7 - 2)
    for n, route in enumerate(FOREIGN_ROUTES * 4):
        messages.append(feed.shipment("wheat", "wheat", route=route, mode=MODES[n % 4]))
    return messages


# ---------------------------------------------------------------------------------------------
# Processes and scraping.


@dataclass(frozen=True)
class Service:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str

    def rss_kib(self) -> int:
        """Resident memory of the process, from /proc/PID/status."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError(f"no VmRSS for {self.name}")


@contextlib.contextmanager
def _service(name: str, env: Mapping[str, str], log: Path) -> Iterator[Service]:
    """``spawn_service(name)``; its log's last lines are printed when the block fails; stopped
    with SIGTERM at the end (exit 0 checked)."""
    port = env[f"{name.upper()}_HTTP_PORT"]
    with spawn_service(name, env, log_path=log) as process:
        try:
            yield Service(name, process, f"http://127.0.0.1:{port}")
        except BaseException:
            print(f"--- {log.name} (last lines) ---")
            print("\n".join(log.read_text(errors="replace").splitlines()[-40:]))
            raise
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, f"{name} did not stop cleanly"


def _env(kafka: KafkaSettings, name: str) -> dict[str, str]:
    prefix = name.upper()
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        f"{prefix}_HTTP_PORT": str(free_port()),
        f"{prefix}_GROUP_ID": unique_name(f"faults-{name}"),
        f"{prefix}_LOG_FORMAT": "text",
        "ROADMAP_CLOCK": "event",
    }


@dataclass(frozen=True)
class Scrape:
    text: str
    samples: Samples

    @property
    def lines(self) -> int:
        return len(self.text.splitlines())

    def by(self, name: str, *labels: str) -> dict[tuple[str, ...], float]:
        return {
            tuple(dict(key)[label] for label in labels): value
            for key, value in self.samples.get(name, {}).items()
        }

    def total(self, name: str) -> float:
        return sum(self.samples.get(name, {}).values())

    def values_of(self, label: str) -> dict[str, set[str]]:
        """Metric name -> the values ``label`` takes in its series (metrics carrying it)."""
        found: dict[str, set[str]] = defaultdict(set)
        for name, series in self.samples.items():
            for key in series:
                labels = dict(key)
                if label in labels:
                    found[name].add(labels[label])
        return found


async def _scrape(base_url: str) -> Scrape:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        response = await client.get("/metrics")
        response.raise_for_status()
    samples: Samples = defaultdict(dict)
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return Scrape(response.text, samples)


async def _until(
    base_url: str, what: str, done: Callable[[Scrape], bool], *, timeout: float = TIMEOUT
) -> Scrape:
    """Scrape ``base_url`` until ``done(scrape)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        scraped = await _scrape(base_url)
        if done(scraped):
            return scraped
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout}s")
        await asyncio.sleep(0.5)


async def _until_through(ingest: Service, metrics: Service, count: int) -> tuple[Scrape, Scrape]:
    """Wait until ingest accepted ``count`` events and metrics folded as many, and FastStream
    counted every batch it handed metrics as processed: it does so only once the handler has
    returned (after the batch's KPI snapshots are published), and a scrape taken in between
    lacks the series ``faststream_received_processed_messages_*`` that the next one has."""
    ingested = await _until(
        ingest.base_url,
        f"{count} events accepted by ingest",
        lambda s: s.total("roadmap_ingest_events_accepted_total") >= count,
    )
    folded = await _until(
        metrics.base_url,
        f"{count} events folded by metrics",
        lambda s: (
            s.total("roadmap_metrics_events_total") >= count
            and s.total("faststream_received_processed_messages_total")
            >= s.total("faststream_received_messages_total")
            > 0
        ),
    )
    return ingested, folded


def _new_series(before: Scrape, after: Scrape) -> dict[str, int]:
    """Sample name -> how many series it has after and not before."""
    grown: dict[str, int] = {}
    for name, series in after.samples.items():
        added = len(set(series) - set(before.samples.get(name, {})))
        if added:
            grown[name] = added
    return grown


def _freight(scraped: Scrape, name: str) -> dict[Key, float]:
    found = scraped.by(name, "direction", "mode", "commodity")
    return {(k[0], k[1], k[2]): v for k, v in found.items()}


# ---------------------------------------------------------------------------------------------


@pytest.mark.timeout(600)
async def test_a_burst_of_unknown_commodities_sectors_and_corridors_keeps_series_bounded(
    broker: RealBroker, tmp_path: Path, fault_report: FaultReport
) -> None:
    """Before the burst, each known commodity and sector and one unknown of each go through
    ingest and metrics. The burst: 1,000 shipments with 1,000 distinct unknown commodity codes
    over every mode and direction, 50 shipments of known commodities among them, 200 projects
    in 200 distinct unknown sectors with a hiring report each, and 20 shipments on five foreign
    corridors (direction ``other``). Afterwards: every metric carrying a ``commodity`` label
    has only configured codes or ``other``, every ``sector`` label a configured sector,
    ``other`` or ``unknown``, every ``direction`` one of the corridor's two or ``other``; the
    freight series are at most 3 directions x 4 modes x 9 commodity labels; under ``other`` the
    shipments, tonnes and USD equal the sums of the unknown ones (worked out from the inputs as
    exact decimals), the known series are exact, and jobs under ``other`` are the unknown
    sectors' sum. No burst code appears anywhere in either service's /metrics, ingest's line
    count does not change and metrics' grows by at most the series a label combination not
    used before can add (freight: 48 lines per new (direction, mode) pair at most)."""
    kafka = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_prefix=unique_name("faults-card") + "."
    )
    feed = Feed(unique_name("card").replace(".", "-"))
    baseline, burst = _baseline(feed), []
    with (
        _service("ingest", _env(kafka, "ingest"), tmp_path / "ingest.log") as ingest,
        _service("metrics", _env(kafka, "metrics"), tmp_path / "metrics.log") as metrics,
    ):
        await wait_ready(ingest.base_url, timeout=TIMEOUT)
        await wait_ready(metrics.base_url, timeout=TIMEOUT)
        await publish(kafka, baseline)
        ingest_before, metrics_before = await _until_through(ingest, metrics, len(baseline))
        rss_before = {s.name: s.rss_kib() for s in (ingest, metrics)}

        burst = _burst(feed)
        started = time.monotonic()
        await publish(kafka, burst)
        total = len(baseline) + len(burst)
        ingest_after, metrics_after = await _until_through(ingest, metrics, total)
        took = time.monotonic() - started
        rss_after = {s.name: s.rss_kib() for s in (ingest, metrics)}

    unknown_commodities = {f"novel_goods_{n:04d}" for n in range(UNKNOWN_COMMODITIES)}
    fault_report.injected(
        f"{len(burst)} valid events after a baseline of {len(baseline)}: "
        f"{UNKNOWN_COMMODITIES} distinct unknown commodity codes, {UNKNOWN_SECTORS} distinct "
        f"unknown sectors, {len(FOREIGN_ROUTES)} foreign corridors"
    )
    fault_report.saw(
        f"through ingest and metrics in {took:.1f}s; /metrics lines: metrics "
        f"{metrics_before.lines} -> {metrics_after.lines}, ingest {ingest_before.lines} -> "
        f"{ingest_after.lines}"
    )
    fault_report.saw(
        "RSS KiB before -> after the burst: "
        + ", ".join(f"{n} {rss_before[n]:,} -> {rss_after[n]:,}" for n in rss_before)
    )

    # Label values stay in their lists, for every metric that carries the label.
    allowed = {
        "commodity": {*DEFAULT_COMMODITIES, "other"},
        "sector": {*DEFAULT_SECTORS, "other", "unknown"},
        "direction": set(DIRECTIONS),
    }
    for label, values in allowed.items():
        carrying = metrics_after.values_of(label)
        assert carrying, f"no metric carries a {label} label"
        for name, seen in carrying.items():
            assert seen <= values, f"{name}: {label} values {sorted(seen - values)[:5]}..."
    for scraped in (metrics_after, ingest_after):
        leaked = [c for c in unknown_commodities if c in scraped.text]
        assert not leaked, f"burst codes on /metrics: {leaked[:5]}"
        assert "novel_sector_" not in scraped.text
    freight_series = {name: len(metrics_after.samples[name]) for name in FREIGHT}
    bound = len(DIRECTIONS) * len(MODES) * (len(DEFAULT_COMMODITIES) + 1)
    fault_report.checked(
        f"freight series per metric {freight_series} <= {bound}; commodity, sector and "
        "direction values within their lists + other; no burst code on either /metrics"
    )
    assert all(n <= bound for n in freight_series.values())

    # ``other`` is the exact sum of the unknown ones; known ones are exact.
    expected = feed.expected.freight
    for column, name in enumerate(FREIGHT):
        shown = _freight(metrics_after, name)
        assert set(shown) == set(expected), name
        for key, row in expected.items():
            assert shown[key] == pytest.approx(float(row[column]), rel=1e-12, abs=1e-9), (name, key)
    other = [row for key, row in expected.items() if key[2] == "other"]
    other_tonnes = sum((row[1] for row in other), Decimal(0))
    other_usd = sum((row[2] for row in other), Decimal(0))
    shown_tonnes = _freight(metrics_after, "roadmap_freight_tonnes")
    shown_other = sum(v for k, v in shown_tonnes.items() if k[2] == "other")
    fault_report.checked(
        f"'other' holds {sum(int(r[0]) for r in other)} shipments, {other_tonnes} t, USD "
        f"{other_usd} (shown {shown_other:.3f} t), every one of {len(expected)} freight keys "
        "exact"
    )
    jobs = {k[0]: v for k, v in metrics_after.by("roadmap_jobs", "sector").items()}
    assert jobs == {sector: float(n) for sector, n in feed.expected.jobs.items()}
    fault_report.checked(
        f"jobs by sector exact: other={jobs['other']:.0f} over {UNKNOWN_SECTORS + 1} unknown "
        f"sectors, {len(jobs)} sector series"
    )

    # The expositions stay bounded: series only for label combinations not used before.
    new_pairs = {(k[0], k[1]) for k in expected} - {
        (k[0], k[1]) for k in _freight(metrics_before, "roadmap_freight_tonnes")
    }
    growth = metrics_after.lines - metrics_before.lines
    grown = _new_series(metrics_before, metrics_after)
    assert set(grown) <= set(FREIGHT), grown
    assert growth <= 3 * (len(DEFAULT_COMMODITIES) + 1) * len(new_pairs), (growth, new_pairs)
    fault_report.checked(
        f"metrics /metrics grew {growth} lines, all freight series of {len(new_pairs)} "
        "(direction, mode) pairs first used in the burst, not one per code"
    )
    upstream = {kafka.topic_name(UPSTREAM_TOPIC_BY_TYPE[t]) for t in EventType}
    handlers = {
        when: {v for seen in scraped.values_of("handler").values() for v in seen}
        for when, scraped in (("before", ingest_before), ("after", ingest_after))
    }
    per_handler = max(
        sum(f'handler="{h}"' in line for line in ingest_after.text.splitlines())
        for h in handlers["after"]
    )
    ingest_growth = ingest_after.lines - ingest_before.lines
    assert {
        n for n in _new_series(ingest_before, ingest_after) if n.startswith("roadmap_")
    } == set()
    assert handlers["after"] <= upstream, handlers
    assert ingest_growth <= per_handler * len(handlers["after"] - handlers["before"])
    fault_report.checked(
        f"ingest /metrics: no new roadmap_* series; grew {ingest_growth} lines, FastStream's "
        f"series of {len(handlers['after'] - handlers['before'])} upstream topic handler(s) first "
        f"seen in the burst ({per_handler} lines per handler), of {len(upstream)} topics at most"
    )
