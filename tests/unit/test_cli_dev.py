"""`roadmap-monitor dev`'s banner, and how the CLI parses dev, publish and status options.

Nothing is started: the commands' runners are replaced to capture what ``main`` passes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.cli import _parser, main
from services.commands import dev, publish, status
from services.commands.dev import DevOptions, banner
from services.common.config import KafkaSettings

PORTS = {"ingest": 18001, "metrics": 18002, "alerts": 18003}
BOOTSTRAP = "127.0.0.1:19092"


# -- the banner --------------------------------------------------------------------------------


def test_banner_names_every_service_url_with_the_chosen_ports() -> None:
    """Ingest, metrics and alerts URLs use the chosen ports; the broker address is shown."""
    text = banner(DevOptions(broker_port=19092, ports=PORTS), BOOTSTRAP)
    assert "http://127.0.0.1:18001/v1/events" in text
    assert "http://127.0.0.1:18002/metrics" in text
    assert "http://127.0.0.1:18003/v1/alerts" in text
    assert f"broker   {BOOTSTRAP}" in text
    assert "KAFKA_BOOTSTRAP_SERVERS" in text
    for default in ("127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003", "127.0.0.1:9092"):
        assert default not in text


def test_banner_tells_how_to_use_and_stop_the_stack() -> None:
    """It shows the status, report and publish commands and that Ctrl-C stops everything."""
    text = banner(DevOptions(), "127.0.0.1:9092")
    assert "roadmap-monitor status" in text
    assert "roadmap-monitor report   (writes report.html)" in text
    assert "roadmap-monitor publish FILE.ndjson --via http" in text
    assert "--via kafka" in text
    assert "Ctrl-C" in text
    assert "/healthz and /readyz" in text


def test_banner_describes_the_demo_feed_with_its_seed_and_speed() -> None:
    """With the demo: the story 2024-2029, its speed (2.5 days a second) and seed (7)."""
    text = banner(DevOptions(ports=PORTS, seed=7, speed=2.5), BOOTSTRAP)
    assert "demo feed: the roadmap's story 2024-2029 at 2.5 simulated days a second" in text
    assert "(seed 7)" in text
    assert "no demo feed" not in text


def test_banner_without_demo_says_there_is_no_feed() -> None:
    """With --no-demo: no demo feed, publish your own events; no seed or speed."""
    text = banner(DevOptions(ports=PORTS, demo=False), BOOTSTRAP)
    assert "no demo feed (--no-demo): publish your own events" in text
    assert "demo feed:" not in text
    assert "seed" not in text
    assert "http://127.0.0.1:18001/v1/events" in text


def test_default_dev_options() -> None:
    """Defaults: broker 9092, ports 8001-8003, demo on, seed 2025, 20 days a second."""
    options = DevOptions()
    assert (options.broker_port, options.ports, options.demo, options.seed, options.speed) == (
        9092,
        {"ingest": 8001, "metrics": 8002, "alerts": 8003},
        True,
        2025,
        20.0,
    )


# -- parsing: dev ------------------------------------------------------------------------------


def test_dev_defaults() -> None:
    """`dev` alone: the demo on, default ports, seed and speed."""
    args = _parser().parse_args(["dev"])
    assert (args.command, args.no_demo, args.broker_port) == ("dev", False, 9092)
    assert (args.ingest_port, args.metrics_port, args.alerts_port) == (8001, 8002, 8003)
    assert (args.seed, args.speed) == (2025, 20.0)


def test_dev_options_are_parsed_with_their_types() -> None:
    """Ports and seed are integers, speed a float, --no-demo a flag."""
    args = _parser().parse_args(
        [
            "dev",
            "--no-demo",
            "--broker-port",
            "19092",
            "--ingest-port",
            "18001",
            "--metrics-port",
            "18002",
            "--alerts-port",
            "18003",
            "--seed",
            "7",
            "--speed",
            "2.5",
        ]
    )
    assert args.no_demo is True
    assert (args.broker_port, args.ingest_port, args.metrics_port, args.alerts_port) == (
        19092,
        18001,
        18002,
        18003,
    )
    assert (args.seed, args.speed) == (7, 2.5)


def test_main_dev_passes_the_options_to_the_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """`main(["dev", ...])` runs the stack with the parsed ports, demo flag, seed and speed."""
    seen: list[DevOptions] = []

    def fake_run_dev(options: DevOptions, *_: Any) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(dev, "run_dev", fake_run_dev)
    argv = ["dev", "--no-demo", "--broker-port", "19092", "--metrics-port", "18002"]
    assert main([*argv, "--seed", "7", "--speed", "0.5"]) == 0
    assert seen == [
        DevOptions(
            broker_port=19092,
            ports={"ingest": 8001, "metrics": 18002, "alerts": 8003},
            demo=False,
            seed=7,
            speed=0.5,
        )
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["dev", "--broker-port", "ninety"], "'ninety'", id="port-not-a-number"),
        pytest.param(["dev", "--speed", "fast"], "'fast'", id="speed-not-a-number"),
        pytest.param(["dev", "--demo"], "unrecognized arguments: --demo", id="unknown-option"),
    ],
)
def test_bad_dev_options_exit_two(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse refuses bad values with exit code 2 and names the culprit on stderr."""
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


# -- parsing: publish --------------------------------------------------------------------------


def test_publish_defaults_to_http_on_the_local_ingest() -> None:
    """`publish FILE`: via http to 127.0.0.1:8001, waiting 30 s for Kafka outcomes."""
    args = _parser().parse_args(["publish", "events.ndjson"])
    assert (args.command, args.file, args.via) == ("publish", Path("events.ndjson"), "http")
    assert (args.ingest_url, args.wait) == ("http://127.0.0.1:8001", 30.0)


def test_publish_via_kafka_with_options() -> None:
    """--via kafka, --ingest-url and --wait are taken as given."""
    args = _parser().parse_args(
        ["publish", "d/e.ndjson", "--via", "kafka", "--ingest-url", "http://h:9", "--wait", "5"]
    )
    assert (args.file, args.via, args.ingest_url, args.wait) == (
        Path("d/e.ndjson"),
        "kafka",
        "http://h:9",
        5.0,
    )


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["publish", "e.ndjson", "--via", "carrier-pigeon"], id="unknown-via"),
        pytest.param(["publish"], id="no-file"),
    ],
)
def test_bad_publish_arguments_exit_two(argv: list[str]) -> None:
    """Only http and kafka are ways to publish, and the file is required."""
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(argv)
    assert exited.value.code == 2


def test_main_publish_passes_file_way_token_and_kafka_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`main(["publish", ...])` hands run_publish the parsed options and the environment's
    ingest token and Kafka settings."""
    seen: dict[str, Any] = {}

    def fake_run_publish(path: Path, **kwargs: Any) -> int:
        seen.update(kwargs, path=path)
        return 2

    monkeypatch.setattr(publish, "run_publish", fake_run_publish)
    monkeypatch.setenv("INGEST_API_TOKEN", "s3cret")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker.test:9093")
    assert main(["publish", "e.ndjson", "--via", "kafka", "--wait", "1.5"]) == 2
    assert seen["path"] == Path("e.ndjson")
    assert (seen["via"], seen["ingest_url"], seen["wait_s"]) == (
        "kafka",
        "http://127.0.0.1:8001",
        1.5,
    )
    assert seen["token"] == "s3cret"
    assert isinstance(seen["kafka"], KafkaSettings)
    assert seen["kafka"].bootstrap_servers == "broker.test:9093"


def test_main_publish_without_a_token_passes_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty INGEST_API_TOKEN means no token."""
    seen: dict[str, Any] = {}

    def fake_run_publish(path: Path, **kwargs: Any) -> int:
        seen.update(kwargs)
        return 0

    monkeypatch.setattr(publish, "run_publish", fake_run_publish)
    monkeypatch.setenv("INGEST_API_TOKEN", "")
    assert main(["publish", "e.ndjson"]) == 0
    assert (seen["token"], seen["via"]) == (None, "http")


def test_main_publish_with_a_bad_kafka_setting_exits_two(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad KAFKA_ variable is named and nothing is published."""
    monkeypatch.setattr(publish, "run_publish", lambda *a, **k: pytest.fail("published"))
    monkeypatch.setenv("KAFKA_TOPIC_PARTITIONS", "0")
    assert main(["publish", "e.ndjson"]) == 2
    assert "KAFKA_TOPIC_PARTITIONS" in capsys.readouterr().err


# -- parsing: status ---------------------------------------------------------------------------


def test_status_defaults_to_the_local_services() -> None:
    """`status`: metrics on 127.0.0.1:8002, alerts on 127.0.0.1:8003."""
    args = _parser().parse_args(["status"])
    assert (args.command, args.metrics_url, args.alerts_url) == (
        "status",
        "http://127.0.0.1:8002",
        "http://127.0.0.1:8003",
    )


def test_main_status_passes_the_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    """--metrics-url and --alerts-url reach show_status as given."""
    seen: list[tuple[str, str]] = []

    def fake_show_status(metrics_url: str, alerts_url: str, *_: Any) -> int:
        seen.append((metrics_url, alerts_url))
        return 1

    monkeypatch.setattr(status, "show_status", fake_show_status)
    argv = ["status", "--metrics-url", "http://m:1/", "--alerts-url", "http://a:2"]
    assert main(argv) == 1
    assert seen == [("http://m:1/", "http://a:2")]


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    """No command: argparse exits 2 and lists the commands."""
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "COMMAND" in capsys.readouterr().err
