"""``roadmap-monitor dev`` as a user runs it: the real command, a real broker, real processes.

One test runs the demo from the banner to Ctrl-C: readiness, the metrics the story moves, the
``status`` scorecard, the jobs alert firing and resolving on the console, then a clean stop with
no process and no port left behind. Another checks that a terminal's Ctrl-C stops the services
before the broker, and another that a killed service is reported and restarted. The publish
tests share a quiet stack (``--no-demo``) and publish files of good and bad events with
``roadmap-monitor publish`` over HTTP and over Kafka, checking the summary and ingest's
counters; that stack is stopped with SIGTERM to ``dev`` alone.

Every step prints what it did, so ``pytest -s`` reads as a report.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from contracts.examples import invalid_examples, valid_examples
from tests.support.dev_stack import (
    ALL_DOWN,
    BANNER_END,
    SERVICES,
    DevPorts,
    DevProcess,
    ProcessInfo,
    clean_env,
    counter_sum,
    exit_times,
    gauge,
    port_is_free,
    processes_tied_to,
    running_dev,
    still_running,
)
from tests.support.services import CLI, REPO

pytestmark = pytest.mark.embedded  # what `make dev` runs on

READY_TIMEOUT_S = 120.0
ALERT_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
DEMO_SPEED = "60"  # simulated days a second: the six years of the story in about 40 s
KAFKA_WAIT_S = "15"
STORY_INDICATORS = ("jobs_created", "industrial_projects", "road_freight_tonnes")
FIRING = r"\[FIRING\] RoadmapTargetBehind jobs_created "
RESOLVED = r"\[RESOLVED\] RoadmapTargetBehind jobs_created "
FEED_DONE = r"^demo feed finished: "
SCORECARD_HEADER = [
    "indicator",
    "actual",
    "expected",
    "target",
    "progress",
    "projected",
    "outlook",
    "alerts",
]

VALID_NAMES = (
    "trade.shipment/road_flour_kz_by.json",
    "trade.shipment/rail_tractors_by_kz_string_amounts.json",
    "trade.shipment/multimodal_lowercase_no_value.json",
    "hiring.report/monthly_hiring.json",
    "hiring.report/net_job_losses.json",
    "project.milestone/combine_harvester_jv_operational.json",
)
NOT_JSON_LINE = b"this line is not JSON at all"


def say(text: str) -> None:
    print(f"  [dev-stack] {text}", flush=True)


def roadmap_indicators() -> list[str]:
    roadmap = yaml.safe_load((REPO / "deploy" / "roadmap.yaml").read_text(encoding="utf-8"))
    return [indicator["id"] for indicator in roadmap["indicators"]]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``roadmap-monitor ARGS`` from the repository root, output captured."""
    return subprocess.run(
        [str(CLI), *args],
        cwd=REPO,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wait_for_banner(dev: DevProcess) -> str:
    """Wait until ``dev`` printed its banner; return it (from the line naming the feed)."""
    end = dev.wait_for(re.escape(BANNER_END), timeout=READY_TIMEOUT_S)
    start = dev.text().rindex("roadmap-monitor is running", 0, end.start())
    say(f"banner printed {dev.elapsed():.1f}s after start")
    return dev.text()[start : end.end()]


def check_banner_ports(banner: str, ports: DevPorts) -> None:
    expected = {
        "ingest": f"http://127.0.0.1:{ports.ingest}/v1/events",
        "metrics": f"http://127.0.0.1:{ports.metrics}/metrics",
        "alerts": f"http://127.0.0.1:{ports.alerts}/v1/alerts",
        "broker": ports.bootstrap,
    }
    for name, address in expected.items():
        assert re.search(rf"^  {name} +{re.escape(address)}\b", banner, re.MULTILINE), (
            f"the banner does not show {name} at {address}:\n{banner}"
        )
    say(f"banner lists the chosen ports: {expected}")


def check_children(dev: DevProcess) -> dict[str, ProcessInfo]:
    """The broker and the three services run as children of ``dev``, on the chosen ports."""
    children = dev.children()
    by_role: dict[str, ProcessInfo] = {}
    for child in children:
        if f"tcp://{dev.ports.bootstrap}" in child.cmdline:
            by_role["broker"] = child
        for name in SERVICES:
            if child.cmdline.endswith(f"-m services.cli run {name}"):
                by_role[name] = child
    assert sorted(by_role) == sorted(["broker", *SERVICES]), [c.cmdline for c in children]
    for name in SERVICES:
        env_file = Path(f"/proc/{by_role[name].pid}/environ").read_bytes()
        assert f"{name.upper()}_HTTP_PORT={dev.ports.of(name)}".encode() in env_file.split(b"\0")
    say("children of dev: " + ", ".join(f"{r} pid {p.pid}" for r, p in sorted(by_role.items())))
    return by_role


def check_everything_down(dev: DevProcess, by_role: dict[str, ProcessInfo]) -> None:
    children = list(by_role.values())
    left = [c for c in children if still_running(c)]
    assert not left, f"children still running after dev exited: {left}"
    tied = processes_tied_to(dev.ports)
    assert not tied, f"processes still tied to this stack's ports: {tied}"
    busy = [port for port in dev.ports.all() if not port_is_free(port)]
    assert not busy, f"ports still taken after dev exited: {busy}"
    say(
        f"no process left ({len(children)} children gone, none tied to the ports); "
        f"ports {list(dev.ports.all())} can be bound again"
    )


def test_dev_runs_the_demo_story_and_ctrl_c_leaves_nothing_behind(tmp_path: Path) -> None:
    """``roadmap-monitor dev --speed 60`` end to end, as in a terminal.

    Checks: the banner appears and shows the chosen ports; while the demo runs every service's
    /readyz answers 200, metrics shows non-zero jobs created, industrial projects and road freight,
    and ``roadmap-monitor status`` prints the scorecard with a row per indicator of
    deploy/roadmap.yaml; the console shows the jobs alert FIRING, then RESOLVED, and the feed
    finishing; Ctrl-C (SIGINT to the whole process group, as a terminal sends it) ends ``dev``
    with exit code 0 within 30 s, "everything is down" is printed, none of its children (broker,
    ingest, metrics, alerts) is still running and every chosen port can be bound again.
    """
    ports = DevPorts.choose()
    with running_dev(ports, tmp_path / "dev.log", "--speed", DEMO_SPEED) as dev:
        say(f"started `roadmap-monitor dev --speed {DEMO_SPEED}` (pid {dev.pid}) with {ports}")
        check_banner_ports(wait_for_banner(dev), ports)
        children = check_children(dev)

        with httpx.Client(timeout=5) as client:
            for name in SERVICES:
                ready = client.get(f"{ports.url(name)}/readyz")
                assert ready.status_code == 200, f"{name}: {ready.status_code} {ready.text}"
            say("/readyz is 200 on ingest, metrics and alerts")

            deadline = time.monotonic() + READY_TIMEOUT_S
            while True:
                text = client.get(f"{ports.url('metrics')}/metrics").text
                values = {
                    i: gauge(text, "roadmap_indicator_value", indicator=i) for i in STORY_INDICATORS
                }
                if all(values.values()):
                    break
                assert time.monotonic() < deadline, f"indicators still zero: {values}"
                time.sleep(0.5)
            assert not re.search(FEED_DONE, dev.text(), re.MULTILINE), "checked too late"
            say(f"while the demo runs, roadmap_indicator_value is non-zero: {values}")

        status = run_cli(
            "status", "--metrics-url", ports.url("metrics"), "--alerts-url", ports.url("alerts")
        )
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert lines[0].startswith("Roadmap scorecard, evaluated at 20"), status.stdout
        assert lines[1].split() == SCORECARD_HEADER, status.stdout
        assert set(lines[2]) == {"─"}, status.stdout  # the header rule
        indicators = roadmap_indicators()
        rows = [line.split()[0] for line in lines[3 : 3 + len(indicators)]]
        assert rows == indicators, status.stdout
        jobs_row = lines[3 + indicators.index("jobs_created")].split()
        assert jobs_row[1] != "-", f"jobs_created has no actual value yet:\n{status.stdout}"
        say(f"`status` printed the scorecard, {len(indicators)} indicator rows:")
        print(status.stdout, end="", flush=True)

        firing = dev.wait_for(FIRING, timeout=ALERT_TIMEOUT_S)
        say(f"console: {firing.string[firing.start() : firing.string.index(' |', firing.start())]}")
        resolved = dev.wait_for(RESOLVED, timeout=ALERT_TIMEOUT_S, after=firing.end())
        end_of_line = resolved.string.index(" |", resolved.start())
        say(f"console, later: {resolved.string[resolved.start() : end_of_line]}")
        dev.wait_for(FEED_DONE, timeout=ALERT_TIMEOUT_S)
        say(f"demo feed finished {dev.elapsed():.1f}s after start")

        stopping = time.monotonic()
        dev.send(signal.SIGINT, group=True)
        code = dev.wait(STOP_TIMEOUT_S)
        took = time.monotonic() - stopping
        assert code is not None, (
            f"dev still running {STOP_TIMEOUT_S:g}s after Ctrl-C:\n{dev.tail()}"
        )
        say(f"Ctrl-C (SIGINT to the process group): dev exited with code {code} in {took:.1f}s")
        assert code == 0, dev.tail()
        assert ALL_DOWN in dev.text(), dev.tail()
        check_everything_down(dev, children)


def test_ctrl_c_in_a_terminal_stops_the_services_before_the_broker(tmp_path: Path) -> None:
    """Ctrl-C in a terminal (SIGINT to the whole foreground process group) must give the
    documented order (services/commands/dev.py: "Ctrl-C or SIGTERM stops the feed, then alerts,
    metrics and ingest, then the broker"): the broker is the last child of ``dev`` to exit, so
    the services do not stop against a broker that is already gone. Also checks exit code 0 and
    that nothing is left behind.
    """
    ports = DevPorts.choose()
    with running_dev(ports, tmp_path / "dev.log", "--no-demo") as dev:
        say(f"started `roadmap-monitor dev --no-demo` (pid {dev.pid}) with {ports}")
        wait_for_banner(dev)
        children = check_children(dev)
        dev.send(signal.SIGINT, group=True)
        gone = exit_times(list(children.values()), timeout=STOP_TIMEOUT_S)
        code = dev.wait(STOP_TIMEOUT_S)
        order = sorted(children, key=lambda role: gone.get(children[role].pid, float("inf")))
        say(
            f"Ctrl-C (SIGINT to the process group): dev exited with code {code}; children exited "
            + ", ".join(f"{role} at {gone.get(children[role].pid, -1):.3f}s" for role in order)
        )
        assert code == 0, dev.tail()
        check_everything_down(dev, children)
        assert order[-1] == "broker", (
            f"the broker exited before the services it serves: {order}\n{dev.tail()}"
        )


# --- publish against a quiet stack ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuietStack:
    dev: DevProcess
    children: dict[str, ProcessInfo]

    @property
    def ports(self) -> DevPorts:
        return self.dev.ports

    def ingest_metrics(self) -> str:
        return httpx.get(f"{self.ports.url('ingest')}/metrics", timeout=5).text


@pytest.fixture(scope="module")
def quiet_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuietStack]:
    """``roadmap-monitor dev --no-demo`` for the publish tests.

    Afterwards it is stopped with SIGTERM to ``dev`` alone (as a service manager would stop it)
    and must stop its children in order (alerts, metrics, ingest, broker), exit 0 and leave
    nothing behind.
    """
    ports = DevPorts.choose()
    log = tmp_path_factory.mktemp("quiet-stack") / "dev.log"
    with running_dev(ports, log, "--no-demo") as dev:
        say(f"started `roadmap-monitor dev --no-demo` (pid {dev.pid}) with {ports}")
        wait_for_banner(dev)
        children = check_children(dev)
        yield QuietStack(dev, children)

        dev.send(signal.SIGTERM, group=False)
        code = dev.wait(STOP_TIMEOUT_S)
        assert code is not None, f"dev still running {STOP_TIMEOUT_S:g}s after SIGTERM"
        say(f"SIGTERM to dev alone: exited with code {code}")
        assert code == 0, dev.tail()
        text = dev.text()
        stops = [text.index(f"\n{name} stopped\n") for name in reversed(SERVICES)]
        stops.append(text.index(ALL_DOWN))
        assert stops == sorted(stops), dev.tail()
        say("stopped in order: alerts, metrics, ingest, then the broker")
        check_everything_down(dev, children)


def with_event_id(raw: bytes, event_id: str) -> bytes:
    event = json.loads(raw)
    event["event_id"] = event_id
    return json.dumps(event).encode()


def mixed_file(path: Path, tag: str) -> dict[str, int]:
    """Write 10 lines: 6 valid events with fresh ids, 1 exact duplicate, 3 invalid lines.

    Returns the line number of each invalid line by what it is.
    """
    valid = {example.name: example.raw for example in valid_examples()}
    invalid = {example.name: example.raw for example in invalid_examples()}
    run = uuid.uuid4().hex[:8]
    good = [with_event_id(valid[n], f"{tag}-{run}-{i}") for i, n in enumerate(VALID_NAMES)]
    lines = [
        good[0],
        good[1],
        invalid["schema_negative_tonnes.json"].strip(),  # line 3
        good[2],
        good[1],  # line 5: the same bytes as line 2
        good[3],
        NOT_JSON_LINE,  # line 7
        good[4],
        invalid["schema_unknown_field.json"].strip(),  # line 9
        good[5],
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return {"negative_tonnes": 3, "not_json": 7, "unknown_field": 9}


@dataclass(frozen=True, slots=True)
class Counts:
    accepted: float
    duplicates: float
    rejected: dict[str, float]

    @classmethod
    def read(cls, text: str, source: str) -> Counts:
        return cls(
            counter_sum(text, "roadmap_ingest_events_accepted", source=source),
            counter_sum(text, "roadmap_ingest_events_duplicate", source=source),
            {
                reason: counter_sum(
                    text, "roadmap_ingest_events_rejected", source=source, reason=reason
                )
                for reason in ("schema", "not_json")
            },
        )

    def minus(self, before: Counts) -> Counts:
        return Counts(
            self.accepted - before.accepted,
            self.duplicates - before.duplicates,
            {k: v - before.rejected[k] for k, v in self.rejected.items()},
        )


def check_mixed_summary(
    result: subprocess.CompletedProcess[str],
    path: Path,
    via: str,
    bad: dict[str, int],
    *,
    non_json_reason: str,
) -> None:
    """Exit 2 and the exact summary of a ``mixed_file``: 6 accepted, 1 exact duplicate, 3
    rejected (schema 2 and the non-JSON line's reason), naming the three bad lines."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"published 10 lines of {path} via {via}: 6 accepted, 1 exact duplicates, 3 rejected"
    )
    assert lines[1] == f"rejected by reason: schema 2, {non_json_reason} 1"
    examples = sorted(re.findall(r"^  line (\d+): (\w+): ", result.stdout, re.MULTILINE))
    assert examples == sorted(
        [
            (str(bad["negative_tonnes"]), "schema"),
            (str(bad["not_json"]), non_json_reason),
            (str(bad["unknown_field"]), "schema"),
        ]
    )


def test_publish_via_http_reports_every_outcome(quiet_stack: QuietStack, tmp_path: Path) -> None:
    """``publish FILE --via http`` on a file of 6 valid events, 1 exact duplicate line, a
    negative tonnage, an unknown field and a plain-text (non-JSON) line: exit code 2 (some
    rejected), the summary says exactly 6 accepted, 1 duplicate, 3 rejected (schema 2,
    not_json 1) naming lines 3, 7 and 9, and ingest's counters for source=http moved the same.
    """
    path = tmp_path / "mixed-http.ndjson"
    bad = mixed_file(path, "http")
    before = Counts.read(quiet_stack.ingest_metrics(), "http")
    result = run_cli(
        "publish", str(path), "--via", "http", "--ingest-url", quiet_stack.ports.url("ingest")
    )
    say(f"`publish {path.name} --via http` exited {result.returncode}:")
    print(result.stdout, end="", flush=True)
    check_mixed_summary(result, path, "http", bad, non_json_reason="not_json")

    moved = Counts.read(quiet_stack.ingest_metrics(), "http").minus(before)
    say(f"ingest counters moved (source=http): {moved}")
    assert moved == Counts(6, 1, {"schema": 2, "not_json": 1})


def test_publish_via_kafka_reports_every_outcome(quiet_stack: QuietStack, tmp_path: Path) -> None:
    """``publish FILE --via kafka`` (KAFKA_BOOTSTRAP_SERVERS = the stack's broker) on the same
    kind of file with fresh event ids: the 9 JSON lines go to their upstream topics and their
    outcomes are read back from the canonical and DLQ topics; the non-JSON line has no type, so
    no topic, and is reported as rejected ``not_sent`` without being sent. Exit code 2; summary
    exactly 6 accepted, 1 duplicate, 3 rejected (schema 2, not_sent 1); ingest's counters for
    source=kafka moved by 6 accepted, 1 duplicate, 2 schema rejections and no not_json.
    """
    path = tmp_path / "mixed-kafka.ndjson"
    bad = mixed_file(path, "kafka")
    env = clean_env(KAFKA_BOOTSTRAP_SERVERS=quiet_stack.ports.bootstrap)
    before = Counts.read(quiet_stack.ingest_metrics(), "kafka")
    started = time.monotonic()
    result = run_cli("publish", str(path), "--via", "kafka", "--wait", KAFKA_WAIT_S, env=env)
    say(
        f"`publish {path.name} --via kafka --wait {KAFKA_WAIT_S}` exited {result.returncode} "
        f"after {time.monotonic() - started:.1f}s:"
    )
    print(result.stdout, end="", flush=True)
    check_mixed_summary(result, path, "kafka", bad, non_json_reason="not_sent")

    moved = Counts.read(quiet_stack.ingest_metrics(), "kafka").minus(before)
    say(f"ingest counters moved (source=kafka): {moved}")
    assert moved == Counts(6, 1, {"schema": 2, "not_json": 0})


def test_publish_via_http_reports_a_truncated_object_line_as_not_json(
    quiet_stack: QuietStack, tmp_path: Path
) -> None:
    """``publish --via http`` on a valid event, a truncated JSON object (the contracts'
    not_json_truncated.json example, which starts with '{' like an event) and another valid
    event: the truncated line is rejected not_json like any other non-JSON line, without
    spoiling the batch around it (exit code 2, 2 accepted, line 2 named) and without ending the
    run as if ingest were unreachable; ingest counts 2 accepted and 1 not_json over HTTP.

    A regression test: publish once chose the lines to post on their own by their first byte,
    so this line was wrapped in an array, ingest answered 400 and publish exited 1 with
    "ingest does not answer".
    """
    invalid = {example.name: example.raw for example in invalid_examples()}
    valid = {example.name: example.raw for example in valid_examples()}
    run = uuid.uuid4().hex[:8]
    path = tmp_path / "truncated.ndjson"
    path.write_bytes(
        b"\n".join(
            [
                with_event_id(valid[VALID_NAMES[0]], f"truncated-{run}-0"),
                invalid["not_json_truncated.json"].strip(),
                with_event_id(valid[VALID_NAMES[3]], f"truncated-{run}-1"),
            ]
        )
        + b"\n"
    )
    before = Counts.read(quiet_stack.ingest_metrics(), "http")
    result = run_cli(
        "publish", str(path), "--via", "http", "--ingest-url", quiet_stack.ports.url("ingest")
    )
    say(f"`publish {path.name} --via http` exited {result.returncode}:")
    print(result.stdout, end="", flush=True)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        f"published 3 lines of {path} via http: 2 accepted, 0 exact duplicates, 1 rejected",
        "rejected by reason: not_json 1",
    ]
    assert re.findall(r"^  line (\d+): (\w+): ", result.stdout, re.MULTILINE) == [("2", "not_json")]
    moved = Counts.read(quiet_stack.ingest_metrics(), "http").minus(before)
    say(f"ingest counters moved (source=http): {moved}")
    assert moved == Counts(2, 0, {"schema": 0, "not_json": 1})


def test_a_service_that_dies_is_reported_and_restarted(tmp_path: Path) -> None:
    """``dev --no-demo``: SIGKILL the metrics process. dev reports it ("metrics exited with code
    -9; restarting (1 of 3)"), starts a new metrics process that becomes ready on the same port,
    and still stops everything cleanly on SIGINT."""
    ports = DevPorts.choose()
    with running_dev(ports, tmp_path / "dev.log", "--no-demo") as dev:
        wait_for_banner(dev)
        children = check_children(dev)
        victim = children["metrics"]
        os.kill(victim.pid, signal.SIGKILL)
        say(f"SIGKILLed metrics (pid {victim.pid})")
        reported = dev.wait_for(
            r"metrics exited with code -9; restarting \(1 of 3\)", timeout=READY_TIMEOUT_S
        )
        say(f"dev said: {reported.group(0)}")
        deadline = time.monotonic() + READY_TIMEOUT_S
        status = 0
        while time.monotonic() < deadline:
            try:
                status = httpx.get(f"{ports.url('metrics')}/readyz", timeout=2).status_code
            except httpx.HTTPError:
                status = 0
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, dev.tail()
        replacement = [
            c for c in dev.children() if c.cmdline.endswith("-m services.cli run metrics")
        ]
        assert len(replacement) == 1
        assert replacement[0].pid != victim.pid
        say(f"a new metrics process (pid {replacement[0].pid}) is ready on {ports.of('metrics')}")
        dev.send(signal.SIGINT, group=False)
        assert dev.wait(STOP_TIMEOUT_S) == 0, dev.tail()
        assert ALL_DOWN in dev.text()
