"""Waiting in tests: poll until something holds, and say what was last seen when it does not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
_LAST_SEEN_CHARS = 2000


def _last_seen(answer: object) -> str:
    if isinstance(answer, list | tuple | set | dict):
        return f"{len(answer)} items"
    return repr(answer)[:_LAST_SEEN_CHARS]


async def until(
    what: str,
    probe: Callable[[], Awaitable[T]],
    predicate: Callable[[T], bool],
    *,
    timeout: float = 60.0,
    interval: float = 0.25,
) -> T:
    """Await ``probe()`` until ``predicate`` holds on its answer; return that answer.

    Raises ``TimeoutError`` naming ``what`` and the last answer after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await probe()
        if predicate(answer):
            return answer
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout:.0f}s; last: {_last_seen(answer)}")
        await asyncio.sleep(interval)
