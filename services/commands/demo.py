"""``roadmap-monitor demo``: publish the demo story to a running stack's upstream topics."""

from __future__ import annotations

import asyncio
import sys

from services.common.config import ConfigError, KafkaSettings, load_settings
from services.demo.feed import run_feed
from services.demo.story import story


def run_demo(seed: int, speed: float) -> int:
    """Feed the story (``KAFKA_*`` settings say where) until it is told or Ctrl-C."""
    try:
        kafka = load_settings(KafkaSettings)
    except ConfigError as exc:
        sys.stderr.write(f"roadmap-monitor demo: {exc}\n")
        return 2
    messages = story(seed)
    sys.stdout.write(
        f"demo: {len(messages):,} messages from {messages[0].at:%Y-%m} to {messages[-1].at:%Y-%m} "
        f"at {speed:g} simulated days a second, to {kafka.bootstrap_servers}\n"
    )

    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    try:
        progress = asyncio.run(run_feed(messages, kafka, speed=speed, report=say))
    except KeyboardInterrupt:
        return 130
    say(f"demo: done, {progress.sent:,} messages sent")
    return 0
