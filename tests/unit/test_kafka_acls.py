"""The Kafka users and ACLs of deploy/kafka/setup.sh are what the code needs, and no more.

The embedded broker has no ACLs, so the grants are checked against what they must be: derived
from the contracts' topic registry (who produces and who consumes each topic), the services'
consumer groups (their settings' defaults) and deploy/publishers.yaml (which upstream publishes
which event type). A grant added or missing on either side fails here.
"""

from __future__ import annotations

import re

import pytest
import yaml

from contracts.events import EventType
from contracts.publishers import load_publishers
from contracts.topics import (
    ALERTS,
    CANONICAL_EVENTS,
    INGEST,
    METRICS,
    TOPICS,
    UPSTREAM,
    UPSTREAM_TOPIC_BY_TYPE,
)
from services.alerts.settings import AlertsSettings
from services.common.config import KafkaSettings
from services.common.kafka import client_options
from services.ingest.settings import IngestSettings
from services.metrics.settings import MetricsSettings
from tests.support.services import REPO

pytestmark = pytest.mark.unit

SCRIPT = (REPO / "deploy" / "kafka" / "setup.sh").read_text()
PUBLISHERS = load_publishers(REPO / "deploy" / "publishers.yaml").publishers
Grant = tuple[str, str, str, str]


def _default(settings: type, field: str) -> str:
    value = settings.model_fields[field].default  # type: ignore[attr-defined]
    assert isinstance(value, str)
    return value


def granted() -> set[Grant]:
    found = re.findall(r"^allow (\S+) (\S+) (topic|group) (\S+)$", SCRIPT, flags=re.MULTILINE)
    assert len(found) == len(set(found)), "a grant is written twice"
    return set(found)


def needed() -> set[Grant]:
    grants: set[Grant] = set()
    for spec in TOPICS:
        if spec.producer == UPSTREAM:
            assert spec.event_type is not None
            writers = [n for n, p in PUBLISHERS.items() if spec.event_type in p.types]
        else:
            writers = [spec.producer]
        grants |= {(writer, "Write", "topic", spec.name) for writer in writers}
        grants |= {(reader, "Read", "topic", spec.name) for reader in spec.consumers}
    ingest_group = _default(IngestSettings, "group_id")
    metrics_group = _default(MetricsSettings, "group_id")
    grants |= {
        (INGEST, "Read", "group", ingest_group),
        (METRICS, "Read", "group", metrics_group),
        (ALERTS, "Read", "group", _default(AlertsSettings, "delivery_group_id")),
        # ingest re-reads the canonical topic's tail for its dedup window (no group)
        (INGEST, "Read", "topic", CANONICAL_EVENTS.name),
    }
    # alerts watches the committed offsets of ingest's and metrics' groups on what they read
    watched = AlertsSettings.model_fields["watch_groups"].default
    assert watched == {"ingest": ingest_group, "metrics": metrics_group}
    for service, group in watched.items():
        grants.add((ALERTS, "Describe", "group", group))
        grants |= {
            (ALERTS, "Describe", "topic", spec.name)
            for spec in TOPICS
            if service in spec.consumers and (ALERTS, "Read", "topic", spec.name) not in grants
        }
    return grants


def test_the_grants_are_exactly_what_the_services_and_upstreams_need() -> None:
    assert granted() == needed()


def test_each_upstream_writes_only_its_own_event_types_topic() -> None:
    for name, publisher in PUBLISHERS.items():
        writes = {topic for user, op, kind, topic in granted() if user == name}
        assert writes == {UPSTREAM_TOPIC_BY_TYPE[EventType(t)].name for t in publisher.types}
        assert all(op == "Write" for user, op, _, _ in granted() if user == name)


def test_every_user_with_a_grant_is_created_and_services_need_a_password() -> None:
    users = dict(re.findall(r"^user (\S+) (KAFKA_PASSWORD_\w+)", SCRIPT, flags=re.MULTILINE))
    assert {user for user, *_ in granted()} == set(users)
    assert set(PUBLISHERS) | {INGEST, METRICS, ALERTS} == set(users)
    optional = set(re.findall(r"^user (\S+) \S+ optional$", SCRIPT, flags=re.MULTILINE))
    assert optional == set(PUBLISHERS)  # a service without its password stops the setup


def test_the_services_connect_as_their_own_users_with_passwords_from_env() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    users = dict(re.findall(r"^user (\S+) (KAFKA_PASSWORD_\w+)", SCRIPT, flags=re.MULTILINE))
    setup_env = compose["services"]["topics"]["environment"]
    for service in (INGEST, METRICS, ALERTS):
        env = compose["services"][service]["environment"]
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["KAFKA_SASL_USERNAME"] == service
        variable = users[service]
        assert env["KAFKA_SASL_PASSWORD"] == f"${{{variable}:?set it in .env}}"
        assert setup_env[variable] == env["KAFKA_SASL_PASSWORD"]
    for variable in users.values():
        assert variable in setup_env


def test_nothing_is_allowed_without_an_acl() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    node = compose["x-kafka-node-env"]
    assert node["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert node["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert node["KAFKA_LISTENER_NAME_CLIENT_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    for service in compose["services"].values():
        assert "9094" not in " ".join(service.get("ports", []))  # the admin listener stays inside


def test_every_client_a_service_builds_carries_its_scram_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The producer, the raw consumers and the admin are all built from ``client_options``:
    with the compose file's variables it holds the service's user and SCRAM-SHA-512."""
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "metrics")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "not-a-real-password")
    options = client_options(KafkaSettings())
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "metrics"
    assert options["sasl_plain_password"] == "not-a-real-password"
    assert "not-a-real-password" not in repr(KafkaSettings())
