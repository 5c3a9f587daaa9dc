"""`roadmap-monitor validate`: exit codes and messages for roadmap files and event lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.examples import invalid_examples, valid_examples
from services.cli import main

REPO = Path(__file__).parents[2]


def test_valid_roadmap_file_exits_zero_and_lists_indicators(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The shipped roadmap validates (exit 0) and each indicator is listed with its target."""
    assert main(["validate", str(REPO / "deploy" / "roadmap.yaml")]) == 0
    out = capsys.readouterr().out
    assert "7 indicators" in out
    assert "jobs_created: target 1800 jobs by 2029-12-31" in out


def test_invalid_roadmap_file_exits_two_naming_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad target exits 2 and the message names file, line and field."""
    text = (REPO / "deploy" / "roadmap.yaml").read_text(encoding="utf-8")
    broken = text.replace("target: 1800", "target: many", 1)
    line = broken.splitlines().index("    target: many") + 1
    path = tmp_path / "roadmap.yaml"
    path.write_text(broken, encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    assert f"{path}:{line}: indicators[0](jobs_created).target:" in capsys.readouterr().err


def test_missing_roadmap_file_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A path that does not exist is reported, not raised."""
    assert main(["validate", str(tmp_path / "absent.yaml")]) == 2
    assert "cannot read the file" in capsys.readouterr().err


def test_event_lines_report_each_bad_line_number_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each invalid line is reported as FILE:LINE: reason; blank lines are skipped; exit 2."""
    valid = [e.raw.strip() for e in valid_examples()]
    bad = next(e for e in invalid_examples() if e.name == "schema_negative_tonnes.json")
    lines = [valid[0], b"", bad.raw.strip(), b"not json at all", *valid[1:]]
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["validate", "--events", str(path)]) == 2
    captured = capsys.readouterr()
    assert f"{path}:3: schema: data.tonnes" in captured.err
    assert f"{path}:4: not_json:" in captured.err
    assert f"{len(valid) + 2} events, {len(valid)} valid, 2 invalid" in captured.out


def test_all_valid_event_lines_exit_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file of valid events exits 0 with a summary."""
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(e.raw.strip() for e in valid_examples()) + b"\n")
    assert main(["validate", "--events", str(path)]) == 0
    assert "0 invalid" in capsys.readouterr().out


def test_validate_needs_a_file_or_events() -> None:
    """Without a target, argparse refuses with exit 2."""
    with pytest.raises(SystemExit) as exited:
        main(["validate"])
    assert exited.value.code == 2
