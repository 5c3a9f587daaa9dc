"""``roadmap-monitor validate``: check a roadmap file, or event lines, against the contracts."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from contracts.codec import Rejected, decode_event
from contracts.roadmap import RoadmapFileError, load_roadmap

EXIT_OK = 0
EXIT_INVALID = 2


def validate_roadmap(path: Path, out: TextIO, err: TextIO) -> int:
    """Exit 0 and summarise a valid roadmap file; exit 2 listing each problem otherwise."""
    try:
        roadmap = load_roadmap(path)
    except RoadmapFileError as exc:
        err.write(f"{exc}\n")
        return EXIT_INVALID
    out.write(
        f"{path}: valid roadmap {roadmap.roadmap!r} with {len(roadmap.indicators)} indicators\n"
    )
    for indicator in roadmap.indicators:
        out.write(
            f"  {indicator.id}: target {indicator.target} {indicator.unit}"
            f" by {indicator.deadline}\n"
        )
    return EXIT_OK


def validate_events(path: Path, out: TextIO, err: TextIO) -> int:
    """Check each non-blank NDJSON line; exit 2 naming each bad line's number and reason."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        err.write(f"{path}: cannot read: {exc.strerror}\n")
        return EXIT_INVALID
    valid = invalid = 0
    with handle:
        for number, line in enumerate(handle, start=1):
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            result = decode_event(raw)
            if isinstance(result, Rejected):
                invalid += 1
                err.write(f"{path}:{number}: {result.reason.value}: {result.detail}\n")
            else:
                valid += 1
    out.write(f"{path}: {valid + invalid} events, {valid} valid, {invalid} invalid\n")
    return EXIT_INVALID if invalid else EXIT_OK
