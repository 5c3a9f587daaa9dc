"""The committed JSON Schema files match what the models render.

The ``jsonschema`` library is not installed in this project's environment, so examples are not
validated against these files here (no dependency is added for it).
"""

from __future__ import annotations

import json

import pytest

from contracts.schema_files import SCHEMA_DIR, render_schemas
from contracts.topics import TOPICS, TopicSpec

RENDERED = render_schemas()
UPSTREAM = [spec for spec in TOPICS if spec.event_type is not None]
STALE = "the committed schema files are stale: run `make schemas`"


def test_every_topic_and_the_roadmap_file_have_a_schema() -> None:
    """render_schemas() yields one file per topic plus roadmap-file.json."""
    expected = {f"{spec.name}.json" for spec in TOPICS} | {"roadmap-file.json"}
    assert set(RENDERED) == expected


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_committed_schema_matches_the_rendered_one(name: str) -> None:
    """The committed file has exactly the text the models render."""
    committed = SCHEMA_DIR / name
    assert committed.is_file(), f"{name} is missing; {STALE}"
    assert committed.read_text(encoding="utf-8") == RENDERED[name], f"{name} differs; {STALE}"


def test_no_extra_schema_files_are_committed() -> None:
    """Every .json file in contracts/schemas/ is one that render_schemas() produces."""
    extra = sorted(p.name for p in SCHEMA_DIR.glob("*.json") if p.name not in RENDERED)
    assert extra == [], f"no model renders {extra}; {STALE}"


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_rendered_schema_is_json_with_a_dialect(name: str) -> None:
    """Each rendered schema parses as a JSON object naming its $schema dialect and title."""
    document = json.loads(RENDERED[name])
    assert isinstance(document, dict)
    assert document["$schema"].startswith("https://json-schema.org/")
    assert document["title"]
    assert RENDERED[name].endswith("\n")


def test_rendering_is_deterministic() -> None:
    """Rendering twice gives the same text, so the committed files do not churn."""
    assert render_schemas() == RENDERED


@pytest.mark.parametrize("spec", UPSTREAM, ids=[s.name for s in UPSTREAM])
def test_upstream_schema_names_the_event_fields(spec: TopicSpec) -> None:
    """An upstream topic's schema requires the envelope fields and forbids extra ones."""
    document = json.loads(RENDERED[f"{spec.name}.json"])
    assert set(document["required"]) >= {"event_id", "type", "schema_version", "occurred_at"}
    assert document["additionalProperties"] is False
