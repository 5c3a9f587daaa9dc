"""Every consumer of the product reads committed records only (``KAFKA_ISOLATION_LEVEL``): a
transactional producer upstream (Java exactly-once, Kafka Streams) can abort, and its aborted
records stay on the log. Checked on what the services actually build."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Literal

import pytest

from services.alerts.app import create_app as create_alerts
from services.alerts.settings import AlertsSettings
from services.common.config import KafkaSettings, load_settings
from services.common.reading import offset_reader, state_reader
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.metrics.app import create_app as create_metrics
from services.metrics.settings import MetricsSettings

REPO = Path(__file__).resolve().parents[2]
Isolation = Literal["read_committed", "read_uncommitted"]


def _subscribers(kafka: KafkaSettings) -> dict[str, list[Any]]:
    apps = {
        "ingest": create_ingest(IngestSettings(kafka=kafka)),
        "metrics": create_metrics(MetricsSettings(kafka=kafka)),
        "alerts": create_alerts(AlertsSettings(kafka=kafka)),
    }
    return {name: list(app.broker.subscribers) for name, app in apps.items()}


def test_read_committed_is_the_default() -> None:
    assert KafkaSettings().isolation_level == "read_committed"


@pytest.mark.parametrize("level", ["read_committed", "read_uncommitted"])
def test_every_subscriber_of_every_service_has_the_configured_isolation(level: Isolation) -> None:
    """Ingest's upstream subscriber, metrics' canonical one and alerts' delivery one."""
    found = _subscribers(KafkaSettings(isolation_level=level))
    assert {name: len(subs) for name, subs in found.items()} == {
        "ingest": 1,
        "metrics": 1,
        "alerts": 1,
    }
    for subscribers in found.values():
        for subscriber in subscribers:
            assert subscriber._connection_args["isolation_level"] == level


def test_group_timings_keep_kafkas_defaults_unless_set() -> None:
    """Production keeps Kafka's client defaults; the tests shorten them through the
    environment (``tests/conftest.py``), which is what a deployment would do too."""
    defaults = KafkaSettings.model_fields
    assert defaults["session_timeout_ms"].default == 10_000
    assert defaults["heartbeat_interval_ms"].default == 3_000


def test_every_subscriber_of_every_service_has_the_configured_group_timings() -> None:
    """A FastStream subscriber has its own defaults (10 s, 3 s): without the settings passed
    through, a group join on the embedded broker takes half the session timeout."""
    found = _subscribers(KafkaSettings(session_timeout_ms=2_000, heartbeat_interval_ms=500))
    for subscribers in found.values():
        for subscriber in subscribers:
            assert subscriber._connection_args["session_timeout_ms"] == 2_000
            assert subscriber._connection_args["heartbeat_interval_ms"] == 500


def test_a_heartbeat_not_below_the_session_timeout_is_refused_naming_both() -> None:
    with pytest.raises(
        ValueError, match="KAFKA_HEARTBEAT_INTERVAL_MS must be below KAFKA_SESSION_TIMEOUT_MS"
    ):
        KafkaSettings(session_timeout_ms=2_000, heartbeat_interval_ms=2_000)


@pytest.mark.parametrize("level", ["read_committed", "read_uncommitted"])
async def test_raw_consumers_have_the_configured_isolation(level: Isolation) -> None:
    """The group-less readers (ingest's recall, the alerts evaluator, ``publish --via kafka``)
    and the offset readers of the alerts service's group watch."""
    kafka = KafkaSettings(isolation_level=level)
    assert state_reader(kafka, client_id="test")._isolation_level == level
    assert offset_reader(kafka, group="g", client_id="test")._isolation_level == level


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Calls of ``name(...)`` or ``<broker>.name(...)`` (a FastStream broker's ``subscriber``,
    not the registration of a handler on a subscriber, ``self.subscriber(handler)``)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        on_broker = (
            isinstance(func, ast.Attribute)
            and func.attr == name
            and isinstance(func.value, ast.Name)
            and func.value.id == "broker"
        )
        if on_broker or (isinstance(func, ast.Name) and func.id == name):
            found.append(node)
    return found


def _given_consumer_options(call: ast.Call) -> bool:
    return any(
        kw.arg is None
        and isinstance(kw.value, ast.Call)
        and isinstance(kw.value.func, ast.Name)
        and kw.value.func.id == "consumer_options"
        for kw in call.keywords
    )


def test_no_consumer_is_built_without_the_shared_options() -> None:
    """Every ``AIOKafkaConsumer(...)`` and every FastStream ``.subscriber(...)`` in the services
    is given ``**consumer_options(...)``: a consumer added without them fails here."""
    missing = []
    for path in sorted((REPO / "services").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name in ("AIOKafkaConsumer", "subscriber"):
            for call in _calls(tree, name):
                if not _given_consumer_options(call):
                    missing.append(f"{path.relative_to(REPO)}:{call.lineno} {name}")
    assert missing == []


def test_a_bad_isolation_level_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_ISOLATION_LEVEL", "read_everything")
    with pytest.raises(Exception, match="KAFKA_ISOLATION_LEVEL"):
        load_settings(IngestSettings)
