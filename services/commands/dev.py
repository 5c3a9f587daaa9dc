"""``roadmap-monitor dev``: the whole system on this machine, one command, nothing left behind.

Starts the broker (the embedded one, or Apache Kafka with ``--engine kafka``) and creates every
topic; starts ingest, metrics and alerts as
separate processes (their log lines shown with the service's name); waits until each answers
``/readyz``; starts the demo feed (unless ``--no-demo``); prints where everything is. A service
that exits is reported and restarted, up to a limit. Ctrl-C or SIGTERM stops the feed, then
alerts, metrics and ingest, then the broker; every child also dies with this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Literal, TextIO

import httpx

from contracts.topics import TOPICS
from services.common.apache_kafka import ApacheKafkaError, KafkaBroker
from services.common.config import KafkaSettings
from services.common.embedded_broker import EmbeddedBroker, EmbeddedBrokerError, die_with_parent
from services.common.topics import ensure_topics
from services.demo.feed import run_feed
from services.demo.story import story

CLI_NAME = "roadmap-monitor"

SERVICE_ORDER = ("ingest", "metrics", "alerts")
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class DevOptions:
    broker_port: int = 9092
    ports: dict[str, int] = field(
        default_factory=lambda: {"ingest": 8001, "metrics": 8002, "alerts": 8003}
    )
    demo: bool = True
    seed: int = 2025
    speed: float = 20.0
    max_restarts: int = 3
    engine: Literal["embedded", "kafka"] = "embedded"


@dataclass
class Child:
    name: str
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    pump: asyncio.Task[None] | None = None
    restarts: int = 0


def broker_name(options: DevOptions) -> str:
    return "Apache Kafka" if options.engine == "kafka" else "the embedded broker"


def banner(options: DevOptions, bootstrap: str) -> str:
    """What ``make dev`` prints once everything is ready (the README's quickstart shows it)."""
    p = options.ports
    feed = (
        f"demo feed: the roadmap's story 2024-2029 at {options.speed:g} simulated days a second "
        f"(seed {options.seed})"
        if options.demo
        else "no demo feed (--no-demo): publish your own events"
    )
    return (
        "\n"
        f"roadmap-monitor is running on {broker_name(options)}; {feed}\n"
        "\n"
        f"  ingest   http://127.0.0.1:{p['ingest']}/v1/events   POST events here\n"
        f"  metrics  http://127.0.0.1:{p['metrics']}/metrics      roadmap_indicator_* and more\n"
        f"  alerts   http://127.0.0.1:{p['alerts']}/v1/alerts    open alerts; notifications "
        "appear below as [alerts] lines\n"
        f"  broker   {bootstrap}                KAFKA_BOOTSTRAP_SERVERS for your own producers\n"
        "  health   /healthz and /readyz on every service; /metrics on every service\n"
        "\n"
        f"  scorecard        {CLI_NAME} status\n"
        f"  progress report  {CLI_NAME} report   (writes report.html)\n"
        f"  publish events   {CLI_NAME} publish FILE.ndjson --via http   (or --via kafka)\n"
        "  stop             Ctrl-C\n"
    )


class DevStack:
    def __init__(self, options: DevOptions, out: TextIO) -> None:
        self.options = options
        self.out = out
        self.stop = asyncio.Event()
        self.broker: EmbeddedBroker | KafkaBroker = (
            KafkaBroker(options.broker_port)
            if options.engine == "kafka"
            else EmbeddedBroker(options.broker_port)
        )
        self.children: list[Child] = []
        self.failed = False

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _env(self, name: str, bootstrap: str) -> dict[str, str]:
        prefix = name.upper()
        return {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            # Apache Kafka takes the idempotent producer; the embedded broker refuses it.
            "KAFKA_ENABLE_IDEMPOTENCE": str(self.options.engine == "kafka").lower(),
            "ROADMAP_CLOCK": "event" if self.options.demo else "wall",
            f"{prefix}_HTTP_PORT": str(self.options.ports[name]),
            f"{prefix}_LOG_FORMAT": "text",
            # Warnings from ingest and metrics; the alerts service's INFO lines tell the story.
            f"{prefix}_LOG_LEVEL": "INFO" if name == "alerts" else "WARNING",
            f"{prefix}_EXTERNAL_URL": f"http://127.0.0.1:{self.options.ports[name]}",
        }

    async def _spawn(self, child: Child) -> None:
        child.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.cli",
            "run",
            child.name,
            env={**os.environ, **child.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=die_with_parent,
            # Its own session: a terminal's Ctrl-C reaches only `dev`, which stops the services
            # in order, then the broker (they still die with `dev` if it is killed).
            start_new_session=True,
        )
        child.pump = asyncio.create_task(self._pump(child, child.process))

    async def _pump(self, child: Child, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        width = max(len(n) for n in SERVICE_ORDER)
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.say(f"[{child.name}]{' ' * (width - len(child.name))} {line}")

    async def _ready(self, child: Child) -> bool:
        url = f"http://127.0.0.1:{self.options.ports[child.name]}/readyz"
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline and not self.stop.is_set():
                if child.process is not None and child.process.returncode is not None:
                    return False
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return True
                await asyncio.sleep(0.3)
        return False

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop.set)
        try:
            return await self._run()
        finally:
            await self._shutdown()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    async def _run(self) -> int:
        where = f"127.0.0.1:{self.options.broker_port}"
        self.say(f"starting {broker_name(self.options)} on {where} ...")
        try:
            bootstrap = await asyncio.to_thread(self.broker.start)
        except (EmbeddedBrokerError, ApacheKafkaError) as exc:
            self.say(f"cannot start the broker: {exc} (use --broker-port)")
            return 1
        kafka = KafkaSettings(
            bootstrap_servers=bootstrap, enable_idempotence=self.options.engine == "kafka"
        )
        await ensure_topics(kafka, TOPICS)
        self.say(f"topics created; starting {', '.join(SERVICE_ORDER)} ...")
        for name in SERVICE_ORDER:
            child = Child(name, self._env(name, bootstrap))
            self.children.append(child)
            await self._spawn(child)
        for child in self.children:
            if not await self._ready(child):
                if not self.stop.is_set():
                    self.say(f"{child.name} did not become ready; see its lines above")
                return 1
        self.say(banner(self.options, bootstrap))
        feed = None
        if self.options.demo:
            messages = story(self.options.seed)
            feed = asyncio.create_task(
                run_feed(messages, kafka, speed=self.options.speed, report=self.say, stop=self.stop)
            )
        return await self._supervise(feed)

    async def _supervise(self, feed: asyncio.Task[object] | None) -> int:
        while not self.stop.is_set():
            if feed is not None and feed.done():
                if feed.exception() is not None:
                    self.say(f"demo feed failed: {feed.exception()!r}")
                else:
                    self.say("demo feed finished: the story is told; the stack keeps running")
                feed = None
            for child in self.children:
                process = child.process
                if process is None or process.returncode is None:
                    continue
                if child.restarts >= self.options.max_restarts:
                    self.say(
                        f"{child.name} exited with code {process.returncode} again; "
                        f"gave up after {child.restarts} restarts, stopping everything"
                    )
                    return 1
                child.restarts += 1
                self.say(
                    f"{child.name} exited with code {process.returncode}; restarting "
                    f"({child.restarts} of {self.options.max_restarts})"
                )
                await self._spawn(child)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=0.5)
        if feed is not None:
            await asyncio.gather(feed, return_exceptions=True)
        return 0

    async def _shutdown(self) -> None:
        self.stop.set()
        for child in reversed(self.children):
            process = child.process
            if process is None or process.returncode is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=STOP_TIMEOUT_S)
            except TimeoutError:
                self.say(f"{child.name} did not stop in {STOP_TIMEOUT_S:g}s; killed")
                process.kill()
                await process.wait()
            if child.pump is not None:
                await asyncio.gather(child.pump, return_exceptions=True)
            self.say(f"{child.name} stopped")
        await asyncio.to_thread(self.broker.stop)
        self.say("broker stopped; everything is down")


def run_dev(options: DevOptions, out: TextIO = sys.stdout) -> int:
    """Run the stack until Ctrl-C/SIGTERM; exit 0, or 1 if it could not start or keep running."""
    return asyncio.run(DevStack(options, out).run())
