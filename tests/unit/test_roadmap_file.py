"""deploy/roadmap.yaml loads, and a bad roadmap file is refused naming its line and field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from contracts.roadmap import RoadmapFileError, load_roadmap, parse_roadmap

ROADMAP_PATH = Path(__file__).parents[2] / "deploy" / "roadmap.yaml"
TEXT = ROADMAP_PATH.read_text(encoding="utf-8")
NAME = Path("r.yaml")


def _line_of(text: str, line: str, after: int = 0) -> int:
    """1-based number of the first line equal to ``line`` after line ``after``."""
    return text.splitlines().index(line, after) + 1


def _edit(old: str, new: str) -> str:
    """The real roadmap file with the one occurrence of ``old`` replaced by ``new``."""
    assert TEXT.count(old) == 1, f"{old!r} is not unique in roadmap.yaml"
    return TEXT.replace(old, new)


def _refusal(text: str) -> RoadmapFileError:
    with pytest.raises(RoadmapFileError) as caught:
        parse_roadmap(text, NAME)
    return caught.value


def _assert_reported(error: RoadmapFileError, line: int, *fragments: str) -> None:
    """Some ``r.yaml:<line>:`` line of the message contains every fragment."""
    reported = [row for row in str(error).splitlines() if row.startswith(f"r.yaml:{line}:")]
    assert any(all(f in row for f in fragments) for row in reported), str(error)


def test_default_roadmap_has_the_design_indicators_and_targets() -> None:
    """The default file holds exactly the seven DESIGN indicators with the article's targets."""
    roadmap = load_roadmap(ROADMAP_PATH)
    targets = {indicator.id: indicator.target for indicator in roadmap.indicators}
    road_tonnes = targets.pop("road_freight_tonnes")
    assert road_tonnes > 0
    assert targets == {
        "jobs_created": Decimal(1800),
        "industrial_projects": Decimal(14),
        "industrial_projects_value_usd": Decimal(277_500_000),
        "joint_ventures_operational": Decimal(11),
        "road_freight_growth_ratio": Decimal("0.19"),
        "flour_export_share_ratio": Decimal("0.102"),
    }
    assert [i.id for i in roadmap.indicators][:1] == ["jobs_created"]


def test_roadmap_indicator_lookup() -> None:
    """RoadmapFile.indicator finds an indicator by id and raises KeyError otherwise."""
    roadmap = load_roadmap(str(ROADMAP_PATH))
    assert roadmap.indicator("jobs_created").target == Decimal(1800)
    with pytest.raises(KeyError):
        roadmap.indicator("nope")


def test_missing_file_is_a_roadmap_error() -> None:
    """A path that cannot be read raises RoadmapFileError naming the path."""
    missing = ROADMAP_PATH.with_name("no-such-roadmap.yaml")
    with pytest.raises(RoadmapFileError, match=r"no-such-roadmap\.yaml:1:"):
        load_roadmap(missing)


def test_wrong_type_for_target_names_its_line() -> None:
    """A non-numeric target is reported on the target's line with its field path."""
    error = _refusal(_edit("    target: 1800\n", "    target: lots\n"))
    _assert_reported(error, _line_of(TEXT, "    target: 1800"), "indicators[0]", ".target")


def test_unknown_sum_field_lists_the_numeric_fields() -> None:
    """Summing a non-numeric field is refused and the message names the numeric fields."""
    error = _refusal(_edit("      field: jobs_created\n", "      field: period\n"))
    line = _line_of(TEXT, "      field: jobs_created")
    _assert_reported(error, line, "compute.field", "'period'", "numeric fields: jobs_created")


def test_unknown_enum_value_in_where_is_refused() -> None:
    """mode: boat in a where clause is refused, naming the field, the value and the choices."""
    old = "        mode: road\n        route_between: [KZ, BY]\n    baseline: 0\n"
    error = _refusal(_edit(old, old.replace("road", "boat")))
    where = _line_of(TEXT, "      where:", _line_of(TEXT, "  - id: road_freight_tonnes"))
    _assert_reported(error, where, "road_freight_tonnes", "compute.where", "mode", "'boat'", "rail")


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [("origin", "ZZ", "ISO 3166"), ("commodity", "'not a code!'", "pattern")],
)
def test_invalid_code_in_where_is_refused(field: str, value: str, says: str) -> None:
    """A filter value no event could carry (unknown country, malformed code) is refused."""
    old = "        mode: road\n        route_between: [KZ, BY]\n    baseline: 0\n"
    error = _refusal(_edit(old, f"        {field}: {value}\n" + old))
    where = _line_of(TEXT, "      where:", _line_of(TEXT, "  - id: road_freight_tonnes"))
    _assert_reported(error, where, "road_freight_tonnes", field, says)


def test_unknown_key_in_an_indicator_is_refused() -> None:
    """An extra key in an indicator is reported on its own line."""
    text = _edit("    unit: jobs\n", "    unit: jobs\n    colour: red\n")
    error = _refusal(text)
    _assert_reported(error, _line_of(text, "    colour: red"), "indicators[0]", ".colour")


def test_duplicate_indicator_ids_are_refused() -> None:
    """Two indicators with one id are refused, naming the id."""
    error = _refusal(_edit("  - id: industrial_projects\n", "  - id: jobs_created\n"))
    _assert_reported(error, _line_of(TEXT, "indicators:"), "indicators", "'jobs_created'", "twice")


def test_duplicate_yaml_keys_are_refused() -> None:
    """A key repeated in one mapping is refused on the repeat's line, not silently overwritten."""
    text = _edit("    unit: jobs\n", "    unit: jobs\n    unit: people\n")
    error = _refusal(text)
    first = _line_of(text, "    unit: jobs")
    _assert_reported(error, first + 1, "duplicate key 'unit'", f"first on line {first}")


@pytest.mark.parametrize("broken", ["    unit: jobs: extra", "\tunit: jobs"])
def test_yaml_syntax_error_names_its_line(broken: str) -> None:
    """Broken YAML is reported as not valid YAML on the broken line."""
    text = _edit("    unit: jobs\n", broken + "\n")
    error = _refusal(text)
    assert len(error.problems) == 1
    _assert_reported(error, _line_of(text, broken), "not valid YAML")


def test_missing_required_field_is_named() -> None:
    """Deleting an indicator's owner line reports 'owner' as required for that indicator."""
    error = _refusal(_edit("    owner: trade-ministry\n", ""))
    line = _line_of(TEXT, "  - id: flour_export_share_ratio")
    _assert_reported(error, line, "flour_export_share_ratio", ".owner", "'owner' is required")


def test_deadline_before_start_is_refused() -> None:
    """A deadline earlier than the start is refused for that indicator."""
    old = "    target: 1800\n    start: 2025-01-01\n    deadline: 2029-12-31\n"
    error = _refusal(_edit(old, old.replace("2029-12-31", "2024-12-31")))
    _assert_reported(error, _line_of(TEXT, "  - id: jobs_created"), "jobs_created", "deadline")


def test_checkpoints_out_of_order_are_refused() -> None:
    """A checkpoint dated before the previous one is refused on the checkpoints line."""
    anchor = "    runbook: docs/runbooks.md#industrial_projects\n"
    old = "        - date: 2026-12-31\n          progress: 0.85\n    tolerance: 0.10\n"
    old += "    severity: warning\n    owner: industry-office\n" + anchor
    error = _refusal(_edit(old, old.replace("2026-12-31", "2025-06-30")))
    start = _line_of(TEXT, "  - id: industrial_projects")
    line = _line_of(TEXT, "      checkpoints:", start)
    _assert_reported(error, line, "trajectory.checkpoints", "must increase")


def test_checkpoint_progress_going_down_is_refused() -> None:
    """A later checkpoint with lower progress than an earlier one is refused."""
    old = "          progress: 0.85\n    tolerance: 0.10\n    severity: warning\n"
    old += "    owner: industry-office\n    runbook: docs/runbooks.md#industrial_projects\n"
    error = _refusal(_edit(old, old.replace("0.85", "0.4")))
    _assert_reported(error, _line_of(TEXT, "      checkpoints:"), "must not go down")


def test_stage_at_least_cancelled_is_refused() -> None:
    """stage_at_least: cancelled is refused: cancelled is not a live stage."""
    old = "        stage_at_least: agreed\n    baseline: 0\n    target: 14\n"
    error = _refusal(_edit(old, old.replace("agreed", "cancelled")))
    line = _line_of(TEXT, "        stage_at_least: agreed")
    _assert_reported(error, line, "where.stage_at_least", "not a live stage")


def test_route_between_on_hiring_reports_is_refused() -> None:
    """route_between filters shipments only; on hiring.report it is refused."""
    new = "      field: jobs_created\n      where:\n        route_between: [KZ, BY]\n"
    text = _edit("      field: jobs_created\n", new)
    error = _refusal(text)
    _assert_reported(error, _line_of(text, "      where:"), "compute.where", "route_between")


@pytest.mark.parametrize("freshness", ["3 weeks", "45", "d", "-5d", "1.5d"])
def test_bad_freshness_is_refused(freshness: str) -> None:
    """A freshness that is not a duration like 45d is refused on its line."""
    error = _refusal(_edit("    freshness: 45d\n", f"    freshness: {freshness}\n"))
    _assert_reported(error, _line_of(TEXT, "    freshness: 45d"), ".freshness", "duration")


def test_every_problem_is_reported_at_once() -> None:
    """Two independent mistakes give two problems, each with its own line."""
    text = _edit("    target: 1800\n", "    target: lots\n")
    text = text.replace("    freshness: 45d\n", "    freshness: soon\n", 1)
    error = _refusal(text)
    lines = {problem.line for problem in error.problems}
    assert {_line_of(text, "    target: lots"), _line_of(text, "    freshness: soon")} <= lines
