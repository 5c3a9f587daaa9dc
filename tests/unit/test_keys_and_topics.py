"""Natural keys and Kafka message keys of events, and the registry of topics."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.codec import Accepted, decode_event
from contracts.events import EventType
from contracts.examples import EXAMPLES_DIR
from contracts.keys import (
    AnyEvent,
    canonical_key,
    entity_of,
    message_key,
    natural_key,
    partition_key,
)
from contracts.topics import TOPICS, UPSTREAM_TOPIC_BY_TYPE, TopicSpec, topic

DESIGN_TOPICS = (
    "roadmap.trade.shipments",
    "roadmap.projects.milestones",
    "roadmap.hiring.reports",
    "roadmap.events.v1",
    "roadmap.events.dlq",
    "roadmap.kpi.v1",
    "roadmap.alerts.v1",
)


def _example(name: str, **changes: Any) -> AnyEvent:
    """The valid example ``<type>/<file>``, with top-level or ``data`` fields changed."""
    obj = json.loads((EXAMPLES_DIR / "valid" / name).read_text(encoding="utf-8"))
    for field, value in changes.items():
        (obj if field in obj else obj["data"])[field] = value
    result = decode_event(json.dumps(obj).encode("utf-8"))
    assert isinstance(result, Accepted), result
    return result.event


def test_shipment_key_is_type_and_shipment_id() -> None:
    """A shipment's natural key is (type, shipment_id) and its message key joins them by '/'."""
    event = _example("trade.shipment/road_flour_kz_by.json")
    assert natural_key(event) == ("trade.shipment", "KZC-2025-000123")
    assert message_key(event) == b"trade.shipment/KZC-2025-000123"


def test_milestone_key_is_type_and_project_id() -> None:
    """A milestone's natural key is (type, project_id), whatever its stage."""
    event = _example("project.milestone/combine_harvester_jv_operational.json")
    assert natural_key(event) == ("project.milestone", "JV-KOSTANAY-COMBINES")
    assert message_key(event) == b"project.milestone/JV-KOSTANAY-COMBINES"
    later = _example(
        "project.milestone/combine_harvester_jv_operational.json",
        event_id="pmo-2025-0099",
        stage="construction",
    )
    assert message_key(later) == message_key(event)


def test_hiring_key_includes_the_period() -> None:
    """A hiring report's key is (type, project_id, period)."""
    event = _example("hiring.report/monthly_hiring.json")
    assert natural_key(event) == ("hiring.report", "JV-KOSTANAY-COMBINES", "2025-03")
    assert message_key(event) == b"hiring.report/JV-KOSTANAY-COMBINES/2025-03"


def test_hiring_reports_for_different_months_have_different_keys() -> None:
    """The same project in another month is a different entity."""
    march = _example("hiring.report/monthly_hiring.json")
    april = _example("hiring.report/monthly_hiring.json", period="2025-04")
    assert message_key(march) != message_key(april)


def test_two_events_for_one_shipment_share_a_key() -> None:
    """Two events about the same shipment id, differing in everything else, share a key."""
    first = _example("trade.shipment/road_flour_kz_by.json")
    second = _example(
        "trade.shipment/road_flour_kz_by.json",
        event_id="kz-customs-2025-000999",
        occurred_at="2025-03-20T08:00:00Z",
        tonnes="30",
    )
    assert first != second
    assert natural_key(first) == natural_key(second)
    assert message_key(first) == message_key(second)


def test_correction_of_a_hiring_report_shares_the_original_key() -> None:
    """The correction example has another event_id but the key of the report it corrects."""
    original = _example("hiring.report/monthly_hiring.json")
    correction = _example("hiring.report/correction.json")
    assert original.event_id != correction.event_id
    assert message_key(correction) == message_key(original)


def test_keys_of_different_types_never_collide() -> None:
    """A shipment and a milestone with the same id have different keys."""
    shipment = _example("trade.shipment/road_flour_kz_by.json", shipment_id="X-1")
    milestone = _example("project.milestone/cancelled_project.json", project_id="X-1")
    assert message_key(shipment) != message_key(milestone)


def test_message_key_is_utf8_of_the_natural_key_joined_by_slash() -> None:
    """For every example, the key decodes as UTF-8 and splits on '/' back to the natural key."""
    for path in sorted((EXAMPLES_DIR / "valid").glob("*/*.json")):
        event = _example(f"{path.parent.name}/{path.name}")
        key = message_key(event)
        assert isinstance(key, bytes)
        assert tuple(key.decode("utf-8").split("/")) == natural_key(event)
        assert natural_key(event)[0] == event.type.value


def test_canonical_key_is_the_natural_key_and_the_version() -> None:
    """The canonical key adds the version the fold orders by; its entity part is the natural
    key, so two versions of one shipment differ in key but share the entity and partition key."""
    first = _example("trade.shipment/road_flour_kz_by.json")
    second = _example(
        "trade.shipment/road_flour_kz_by.json",
        event_id="kz-customs-2025-000999",
        occurred_at="2025-03-20T08:00:00+05:00",
    )
    assert canonical_key(first) == (
        b"trade.shipment/KZC-2025-000123@2025-03-14T10:00:00.000000Z/kz-customs-2025-000123"
    )
    assert canonical_key(second) == (
        b"trade.shipment/KZC-2025-000123@2025-03-20T03:00:00.000000Z/kz-customs-2025-000999"
    )
    assert entity_of(canonical_key(first)) == entity_of(canonical_key(second)) == message_key(first)
    assert partition_key(first) == partition_key(second)


def test_the_same_version_published_twice_has_one_key() -> None:
    """A re-publication (after a crash between publish and commit) is the same key: compaction
    may drop it, which changes nothing the fold sees."""
    event = _example("project.milestone/combine_harvester_jv_operational.json")
    again = _example("project.milestone/combine_harvester_jv_operational.json")
    assert canonical_key(event) == canonical_key(again)


def test_topic_names_are_unique() -> None:
    """No two topics share a name."""
    names = [spec.name for spec in TOPICS]
    assert len(names) == len(set(names))


def test_design_topics_are_all_registered() -> None:
    """Every topic named in DESIGN.md is in the registry, and nothing else."""
    assert {spec.name for spec in TOPICS} == set(DESIGN_TOPICS)


@pytest.mark.parametrize("event_type", list(EventType))
def test_each_event_type_has_exactly_one_upstream_topic(event_type: EventType) -> None:
    """Exactly one topic carries upstream events of each type, and the index points to it."""
    matching = [spec for spec in TOPICS if spec.event_type is event_type]
    assert len(matching) == 1
    assert UPSTREAM_TOPIC_BY_TYPE[event_type] is matching[0]
    assert matching[0].producer == "upstream"


@pytest.mark.parametrize("name", DESIGN_TOPICS)
def test_topic_finds_each_topic_by_name(name: str) -> None:
    """topic(name) returns the spec with that name."""
    assert topic(name).name == name


@pytest.mark.parametrize("name", ["", "roadmap.events", "roadmap.events.v2", "ROADMAP.KPI.V1"])
def test_topic_raises_key_error_for_unknown_names(name: str) -> None:
    """topic() raises KeyError for a name the product does not have."""
    with pytest.raises(KeyError):
        topic(name)


@pytest.mark.parametrize("spec", TOPICS, ids=[s.name for s in TOPICS])
def test_value_schema_is_a_json_schema_object(spec: TopicSpec) -> None:
    """Each topic's value schema is a dict describing an object or a union of objects."""
    schema = spec.value_schema()
    assert isinstance(schema, dict)
    assert {"properties", "oneOf", "anyOf", "discriminator"} & schema.keys(), schema.keys()
    json.dumps(schema)  # serialisable as JSON


@pytest.mark.parametrize("spec", TOPICS, ids=[s.name for s in TOPICS])
def test_every_topic_has_a_producer_and_consumers(spec: TopicSpec) -> None:
    """Each topic names who produces it and at least one consumer."""
    assert spec.producer in {"upstream", "ingest", "metrics", "alerts"}
    assert spec.consumers
    assert spec.description
