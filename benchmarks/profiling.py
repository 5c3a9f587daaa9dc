"""CPU profiles of a running service: py-spy samples it into a flame graph (SVG)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from pathlib import Path

from benchmarks.report import say

SAMPLES_PER_S = 200


@contextlib.asynccontextmanager
async def flame_graph(pid: int, out: Path, *, what: str) -> AsyncIterator[None]:
    """Sample process ``pid`` while the block runs and write ``out`` (an SVG flame graph).

    py-spy reads the process's memory from outside (no code in the service) and pauses it for
    each sample, a cost of a few per cent at this rate. A profiler that cannot attach (no
    ptrace permission, say) is reported and the benchmark goes on without the profile."""
    py_spy = Path(sys.executable).with_name("py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    process: Process | None = None
    try:
        process = await asyncio.create_subprocess_exec(
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(SAMPLES_PER_S),
            "--output",
            str(out),
            "--format",
            "flamegraph",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        say(f"  no profile of {what}: {exc}")
    try:
        yield
    finally:
        if process is not None:
            await _finish(process, out, what)


async def _finish(process: Process, out: Path, what: str) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)  # py-spy writes the graph when interrupted
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    if process.returncode == 0:
        say(f"  profile of {what}: {out}")
    else:
        say(f"  no profile of {what}: {err.decode(errors='replace').strip()[-300:]}")
