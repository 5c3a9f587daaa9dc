"""Test tiers: every test lives in ``tests/<tier>/`` and carries that tier's marker.

Select a tier with ``-m unit`` (or ``service``, ``connected``, ``e2e``). The run ends with one
line per tier so a reader sees what was exercised.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kafka import RealBroker, broker_description, real_broker

pytest_plugins = ["tests.support.fault_report"]

TIERS = ("unit", "service", "connected", "e2e")
QUICK_GROUPS = {"KAFKA_SESSION_TIMEOUT_MS": "2000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500"}
"""For every consumer the tests build, in this process or as a service process: a member that
was killed is dropped from its group 2 s after its last heartbeat instead of 10 s (the tests'
Apache Kafka allows sessions down to 1 s; its default floor is 6 s). On the embedded broker,
which completes a group join only after half the session timeout (at least 1 s), the default
10 s also meant 5 s per join (measured: 5.01 s; 1.01 s with 2 s). Production keeps the
defaults; a variable set in the environment wins."""
_TESTS_DIR = Path(__file__).parent
BROKER_TIERS = ("connected", "e2e")
"""The tiers whose closing line names the broker they ran on."""
_outcomes: Counter[tuple[str, str]] = Counter()
_on_embedded: Counter[str] = Counter()
_seconds: defaultdict[str, float] = defaultdict(float)


def _tier_of(item: pytest.Item) -> str:
    relative = Path(str(item.path)).relative_to(_TESTS_DIR)
    tier = relative.parts[0]
    if tier not in TIERS:
        raise pytest.UsageError(f"{item.nodeid}: tests must live in tests/<tier>/, tier in {TIERS}")
    return tier


ON_KAFKA = {"KAFKA_ENABLE_IDEMPOTENCE": "true"}
"""For every client and service process the tests build: Apache Kafka takes the idempotent
producer, as production has it (the `dev` stack, on the embedded broker, sets its own)."""


def pytest_configure(config: pytest.Config) -> None:
    for name, value in {**QUICK_GROUPS, **ON_KAFKA}.items():
        os.environ.setdefault(name, value)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(getattr(pytest.mark, _tier_of(item)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    tier = next((t for t in TIERS if report.nodeid.startswith(f"tests/{t}/")), "other")
    _seconds[tier] += report.duration
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        outcome: str = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        _outcomes[(tier, outcome)] += 1
        if "embedded" in report.keywords:
            _on_embedded[tier] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _outcomes:
        return
    terminalreporter.section("tests by tier")
    for tier in TIERS:
        counts = {outcome: n for (t, outcome), n in _outcomes.items() if t == tier}
        if counts:
            detail = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
            if tier in BROKER_TIERS:
                detail += f" on {broker_description()}"
                if _on_embedded[tier]:
                    detail += f" ({_on_embedded[tier]} of them on the embedded broker)"
            terminalreporter.write_line(
                f"{tier}: {detail}; {_seconds[tier]:.1f} s in setup, call and teardown"
            )


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealBroker]:
    """One real broker per pytest worker for every test that asks (connected and e2e tiers):
    Apache Kafka unless ``KAFKA_BOOTSTRAP_SERVERS`` names another. Tests keep apart by topic
    and group names."""
    with real_broker(tmp_path_factory.mktemp("broker")) as running:
        yield running
