"""docker-compose.yml agrees with the code: settings, ports, health checks, images, topics.

No Docker engine is needed: the file is read as YAML and checked against the settings classes,
the alerts file and the contracts' topic registry, so a renamed setting or topic fails here.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic_settings import BaseSettings

from contracts.alerts_file import load_alerts_file
from contracts.topics import TOPICS
from services.alerts.settings import AlertsSettings
from services.common.apache_kafka import SHARED_PROPERTIES, kafka_version
from services.common.config import KafkaSettings, ServiceSettings
from services.registry import service_parts
from tests.support.services import REPO

COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = ("ingest", "metrics", "alerts")


def _env_names(settings_cls: type[BaseSettings]) -> set[str]:
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    names = set()
    for name, field in settings_cls.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else (prefix + name).upper())
    return names


def _receiver_variables() -> set[str]:
    alerts = load_alerts_file(REPO / "deploy" / "alerts.yaml")
    found = set()
    for receiver in alerts.receivers:
        found |= {v for v in (receiver.url_env, receiver.secret_env) if v}
    return found


def test_every_service_variable_is_a_setting_it_reads() -> None:
    """Each variable given to ingest, metrics or alerts names a field of its settings, the
    shared Kafka settings, or (alerts) a receiver variable of deploy/alerts.yaml."""
    unknown = {}
    for name in SERVICES:
        settings_cls, _ = service_parts(name)
        known = _env_names(settings_cls) | _env_names(KafkaSettings)
        if name == "alerts":
            known |= _receiver_variables()
        given = set(COMPOSE["services"][name]["environment"])
        if given - known:
            unknown[name] = sorted(given - known)
    assert unknown == {}


def test_ports_and_health_checks_match_the_services() -> None:
    """The HTTP port a service is told to use is the one published and the one its health
    check asks, on /healthz (the liveness endpoint every service serves)."""
    for name in SERVICES:
        service = COMPOSE["services"][name]
        port = service["environment"][f"{name.upper()}_HTTP_PORT"]
        assert service["environment"][f"{name.upper()}_HTTP_HOST"] == "0.0.0.0"
        assert service["ports"] == [f"{port}:{port}"]
        check = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in check
        assert service["command"] == ["run", name]


def test_every_image_is_pinned() -> None:
    """Third-party images carry an explicit version tag, never ``latest``; ours are built."""
    for name, service in COMPOSE["services"].items():
        image = service.get("image", "")
        if "build" in service:
            continue
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), (name, image)
        assert not image.endswith(":latest"), (name, image)


def test_kafka_runs_the_version_the_tests_run_with_the_shared_broker_settings() -> None:
    """Every apache/kafka image is the version pinned in deploy/kafka/pom.xml, and every broker
    reads deploy/kafka/broker.properties, the settings the tests' brokers start from."""
    kafka_images = {
        name: service["image"]
        for name, service in COMPOSE["services"].items()
        if service.get("image", "").startswith("apache/kafka:")
    }
    assert {"kafka", "kafka-2", "kafka-3", "topics"} <= set(kafka_images)
    assert set(kafka_images.values()) == {f"apache/kafka:{kafka_version()}"}
    shared = "./deploy/kafka/broker.properties:/mnt/shared/config/server.properties:ro"
    for name in ("kafka", "kafka-2", "kafka-3"):
        assert shared in COMPOSE["services"][name]["volumes"], name
    assert SHARED_PROPERTIES == REPO / "deploy" / "kafka" / "broker.properties"


def test_the_initialiser_creates_the_registry_topics_with_their_configuration() -> None:
    """Topics created by the one-shot initialiser are exactly the contracts' topics, each with
    the configuration the registry gives it (compaction or retention), and with the partition
    count the services are told about."""
    initialiser = COMPOSE["services"]["topics"]
    assert initialiser["entrypoint"] == ["/bin/bash", "/opt/roadmap/setup.sh"]
    assert "./deploy/kafka/setup.sh:/opt/roadmap/setup.sh:ro" in initialiser["volumes"]
    script = (REPO / "deploy" / "kafka" / "setup.sh").read_text()
    created = dict(re.findall(r"^\s*create (\S+) (\S+)$", script, flags=re.MULTILINE))
    expected = {spec.name: spec.topic_config() for spec in TOPICS}
    assert set(created) == set(expected)
    for topic, setting in created.items():
        key, value = setting.split("=", 1)
        assert expected[topic] == {key: value}, topic
    for name in SERVICES:
        told = COMPOSE["services"][name]["environment"]["KAFKA_TOPIC_PARTITIONS"]
        assert told == initialiser["environment"]["PARTITIONS"], name


def _kafka_nodes() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in COMPOSE["services"].items()
        if "KAFKA_NODE_ID" in (service.get("environment") or {})
    }


def test_the_replicated_profile_adds_two_brokers_to_the_same_cluster() -> None:
    """Without a profile one node is broker and controller; `--profile replicated` adds two
    brokers with their own ids, names and volumes, on the same cluster id and controller, and
    the initialiser waits for them when they run."""
    nodes = _kafka_nodes()
    default = [name for name, node in nodes.items() if "profiles" not in node]
    replicated = [name for name, node in nodes.items() if node.get("profiles") == ["replicated"]]
    assert default == ["kafka"]
    assert len(replicated) == 2
    assert len(nodes) == 3
    environments = [node["environment"] for node in nodes.values()]
    assert len({env["KAFKA_NODE_ID"] for env in environments}) == 3
    assert len({env["CLUSTER_ID"] for env in environments}) == 1
    assert {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in environments} == {"1@kafka:9093"}
    assert nodes["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    volumes = set()
    for name in replicated:
        env = nodes[name]["environment"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker"
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"CLIENT://{name}:9092,INTERNAL://{name}:9094"
        assert env["NODE"] == name  # the health check asks that node
        waits = COMPOSE["services"]["topics"]["depends_on"][name]
        assert waits == {"condition": "service_healthy", "required": False}
    for node in nodes.values():
        volume, _shared_settings = node["volumes"]
        volumes.add(volume.split(":")[0])
    assert volumes <= set(COMPOSE["volumes"])
    assert len(volumes) == 3


def test_replication_is_one_setting_for_the_topics_and_the_brokers() -> None:
    """The topics' replication and the brokers' internal topics follow the same variable, so
    the replicated variant is switched on in .env, where .env.example shows how."""
    initialiser = COMPOSE["services"]["topics"]["environment"]
    assert initialiser["REPLICATION_FACTOR"] == "${KAFKA_REPLICATION_FACTOR:-1}"
    assert initialiser["MIN_INSYNC_REPLICAS"] == "${KAFKA_MIN_INSYNC_REPLICAS:-1}"
    for node in _kafka_nodes().values():
        env = node["environment"]
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "${KAFKA_REPLICATION_FACTOR:-1}"
    example = (REPO / ".env.example").read_text()
    for line in ("COMPOSE_PROFILES=replicated", "KAFKA_REPLICATION_FACTOR=3"):
        assert line in example


def test_no_secret_is_written_in_the_file() -> None:
    """Secret-looking variables come from .env (``${...}``), and .env.example lists each
    variable they are read from."""
    example = (REPO / ".env.example").read_text()
    for service in COMPOSE["services"].values():
        for variable, value in (service.get("environment") or {}).items():
            if (
                re.search(r"TOKEN|SECRET|PASSWORD|_URL$", variable)
                and "ALERTMANAGER" not in variable
            ):
                if variable.endswith("EXTERNAL_URL"):
                    continue
                assert str(value).startswith("${"), (variable, value)
                source = re.match(r"\$\{(\w+)", str(value))
                assert source is not None, (variable, value)
                assert f"\n{source.group(1)}=" in f"\n{example}", variable


def test_the_service_image_is_slim_pinned_non_root_and_carries_its_default_files() -> None:
    """The Dockerfile every service is built from: a pinned slim base, a non-root user, and
    the roadmap and alerts files where the settings look by default."""
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM (\S+)$", dockerfile, flags=re.MULTILINE)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base
    users = re.findall(r"^USER (\S+)$", dockerfile, flags=re.MULTILINE)
    assert users, "no USER line"
    assert users[-1] not in {"root", "0"}
    copied = " ".join(re.findall(r"^COPY (.+)$", dockerfile, flags=re.MULTILINE))
    for default in (
        str(ServiceSettings.model_fields["roadmap_file"].default),
        str(AlertsSettings.model_fields["file"].default),
    ):
        assert default in copied, default
    for service in SERVICES:
        assert COMPOSE["services"][service]["build"]["dockerfile"] == "deploy/Dockerfile"
