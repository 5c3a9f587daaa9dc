"""`roadmap-monitor run SERVICE` refuses a bad configuration before it starts anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli import main


def test_bad_setting_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-numeric port and an unknown security protocol exit 2 and name both variables."""
    monkeypatch.setenv("INGEST_HTTP_PORT", "eighty")
    monkeypatch.setenv("INGEST_BATCH_MAX_RECORDS", "0")
    assert main(["run", "ingest"]) == 2
    err = capsys.readouterr().err
    assert "INGEST_HTTP_PORT" in err
    assert "INGEST_BATCH_MAX_RECORDS" in err


def test_bad_kafka_setting_is_named_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Kafka setting shared by every service is reported with its KAFKA_ name."""
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "no spaces allowed")
    assert main(["run", "ingest"]) == 2
    assert "KAFKA_TOPIC_PREFIX" in capsys.readouterr().err


def test_unknown_service_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Only the services that exist can be run; argparse lists them."""
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "billing"])
    assert exit_info.value.code == 2
    assert "ingest" in capsys.readouterr().err


def test_metrics_refuses_an_invalid_roadmap_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`run metrics` with a broken roadmap file exits 2 naming the file, line and field."""
    roadmap = tmp_path / "roadmap.yaml"
    roadmap.write_text("version: 1\nroadmap: x\ntitle: t\nindicators: []\n", encoding="utf-8")
    monkeypatch.setenv("ROADMAP_FILE", str(roadmap))
    assert main(["run", "metrics"]) == 2
    err = capsys.readouterr().err
    assert "invalid roadmap file" in err
    assert f"{roadmap}:4" in err
    assert "indicators" in err


def test_alerts_refuses_an_invalid_alerts_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`run alerts` with a route naming an unknown receiver exits 2 naming file, line, field."""
    alerts = tmp_path / "alerts.yaml"
    alerts.write_text(
        "version: 1\n"
        "receivers:\n"
        "  - {name: console, kind: console}\n"
        "routes:\n"
        "  - receivers: [pager]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ALERTS_FILE", str(alerts))
    assert main(["run", "alerts"]) == 2
    err = capsys.readouterr().err
    assert "invalid alerts file" in err
    assert f"{alerts}:4: routes: routes name unknown receivers: pager" in err


def test_alerts_refuses_a_webhook_without_its_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped file's webhook, enabled by its URL variable, needs its secret variable set;
    start-up stops naming that variable, and the URL is not printed."""
    monkeypatch.setenv("ALERTS_WEBHOOK_URL", "http://127.0.0.1:9/hook-with-token-abc")
    monkeypatch.delenv("ALERTS_WEBHOOK_SECRET", raising=False)
    assert main(["run", "alerts"]) == 2
    err = capsys.readouterr().err
    assert "ALERTS_WEBHOOK_SECRET" in err
    assert "hook-with-token-abc" not in err
