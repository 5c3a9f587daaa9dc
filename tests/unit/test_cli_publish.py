"""`roadmap-monitor publish`: reading the file, batching for HTTP, the tally, summary and bar,
and what it does with each answer ingest can give.

No broker and no sockets: ingest's answers come from httpx's in-memory transport. A batch is
what ``publish_http`` posts as one JSON array to ingest, whose ``split_elements`` must be able
to take it apart.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import httpx
import pytest

from services.commands.publish import (
    BATCH_BYTES,
    BATCH_EVENTS,
    Progress,
    Tally,
    _batches,
    publish_http,
    read_lines,
    summary,
)
from services.ingest.http_api import split_elements


def event_line(n: int) -> bytes:
    return b'{"event_id": "e-%d"}' % n


def posted_body(batch: list[tuple[int, bytes]]) -> bytes:
    """What ``publish_http`` sends for a batch of more than one line."""
    return b"[" + b",".join(line for _, line in batch) + b"]"


# -- read_lines ----------------------------------------------------------------------------------


def test_read_lines_skips_blank_lines_and_keeps_line_numbers(tmp_path: Path) -> None:
    """Blank and whitespace-only lines are skipped; others keep their 1-based number, stripped."""
    path = tmp_path / "events.ndjson"
    path.write_bytes(b'{"a": 1}\n\n   \n  {"b": 2}\r\n\t\nnot json\n\n{"c": 3}')
    assert read_lines(path) == [
        (1, b'{"a": 1}'),
        (4, b'{"b": 2}'),
        (6, b"not json"),
        (8, b'{"c": 3}'),
    ]


def test_read_lines_of_an_empty_file(tmp_path: Path) -> None:
    """An empty or all-blank file has no lines."""
    path = tmp_path / "blank.ndjson"
    path.write_bytes(b"\n \n\t\n")
    assert read_lines(path) == []


# -- _batches --------------------------------------------------------------------------------


def test_batches_hold_at_most_500_events() -> None:
    """1,001 small events: batches of 500, 500 and 1, in file order."""
    lines = [(n, event_line(n)) for n in range(1, 1002)]
    batches = _batches(lines)
    assert BATCH_EVENTS == 500
    assert [len(b) for b in batches] == [500, 500, 1]
    assert [entry for batch in batches for entry in batch] == lines


def test_batches_are_cut_before_passing_the_byte_cap() -> None:
    """Lines of 200,000 bytes: two fit under 512 KiB (400,002 counted), a third would not."""
    assert BATCH_BYTES == 524_288
    big = b'"' + b"x" * 199_998 + b'"'
    assert len(big) == 200_000
    lines = [(n, big) for n in range(1, 6)]
    assert [[n for n, _ in batch] for batch in _batches(lines)] == [[1, 2], [3, 4], [5]]


def test_a_line_over_the_byte_cap_goes_in_a_batch_of_its_own() -> None:
    """A 600,000-byte event is not dropped and does not leave an empty batch behind."""
    huge = b'"' + b"y" * 599_998 + b'"'
    lines = [(1, event_line(1)), (2, huge), (3, event_line(3))]
    assert [[n for n, _ in batch] for batch in _batches(lines)] == [[1], [2], [3]]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"not json at all", id="text"),
        pytest.param(b'{"event_id": "e-2", ', id="truncated"),
        pytest.param(b'{"name": "\xff"}', id="not-utf8"),
    ],
)
def test_a_non_json_line_goes_alone(bad: bytes) -> None:
    """The bad line is a batch of its own; the events around it stay together."""
    lines = [(1, event_line(1)), (2, bad), (3, event_line(3))]
    batches = _batches(lines)
    assert sorted(batches) == [[(1, event_line(1)), (3, event_line(3))], [(2, bad)]]


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b'\xef\xbb\xbf{"event_id": "e-2"}', id="utf8-bom"),
        pytest.param('{"event_id": "e-2"}'.encode("utf-16"), id="utf16"),
        pytest.param(b"[" * 100_000, id="deeply-nested"),
    ],
)
def test_a_line_ingest_cannot_read_in_an_array_goes_alone(line: bytes) -> None:
    """A line that would make ingest refuse the posted array is posted on its own."""
    lines = [(1, event_line(1)), (2, line), (3, event_line(3))]
    batches = _batches(lines)
    assert [(2, line)] in batches
    for batch in batches:
        if len(batch) > 1:
            assert len(split_elements(posted_body(batch))) == len(batch)


def test_batches_of_json_lines_split_back_into_the_same_lines() -> None:
    """Ingest's splitter takes a posted batch apart into exactly the file's lines."""
    lines = [(1, event_line(1)), (2, b'  {"x": [1, 2]}'), (3, b"42"), (4, b'"text"')]
    (batch,) = _batches(lines)
    assert split_elements(posted_body(batch)) == [
        b'{"event_id": "e-1"}',
        *[line.strip() for _, line in lines[1:]],
    ]


def test_no_lines_no_batches() -> None:
    """Nothing to send: no batch (not one empty batch)."""
    assert _batches([]) == []


# -- Tally and summary -----------------------------------------------------------------------


def test_tally_counts_rejections_by_reason_and_keeps_ten_examples() -> None:
    """Twelve rejections: counted by reason; only the first ten are kept as examples."""
    tally = Tally(total=20, accepted=5, duplicates=2, unseen=1)
    for n in range(1, 13):
        tally.reject(n, "schema" if n % 3 else "not_json", f"detail {n}")
    assert tally.rejected == Counter({"schema": 8, "not_json": 4})
    assert tally.done == 5 + 2 + 12 + 1
    assert len(tally.examples) == 10
    assert tally.examples[0] == "  line 1: schema: detail 1"
    assert tally.examples[-1] == "  line 10: schema: detail 10"


def test_summary_with_rejections() -> None:
    """Counts, then reasons by count (largest first), then the examples with line numbers."""
    tally = Tally(total=1_234, accepted=1_200, duplicates=31)
    tally.reject(7, "schema", "data.tonnes: Input should be greater than 0")
    tally.reject(9, "not_json", "not JSON: Expecting value: line 1 column 1 (char 0)")
    tally.reject(12, "schema", "data.mode: Input should be 'road', 'rail', 'air' or 'multimodal'")
    assert summary(tally, Path("events.ndjson"), "http") == (
        "published 1,234 lines of events.ndjson via http: 1,200 accepted, "
        "31 exact duplicates, 3 rejected\n"
        "rejected by reason: schema 2, not_json 1\n"
        "  line 7: schema: data.tonnes: Input should be greater than 0\n"
        "  line 9: not_json: not JSON: Expecting value: line 1 column 1 (char 0)\n"
        "  line 12: schema: data.mode: Input should be 'road', 'rail', 'air' or 'multimodal'\n"
    )


def test_summary_with_unseen_lines() -> None:
    """Lines with no outcome seen are counted, with the two likely causes."""
    tally = Tally(total=2_500, accepted=2_450, unseen=50)
    assert summary(tally, Path("out/demo.ndjson"), "kafka") == (
        "published 2,500 lines of out/demo.ndjson via kafka: 2,450 accepted, "
        "0 exact duplicates, 0 rejected, 50 with no outcome seen (an exact duplicate of an "
        "event accepted earlier produces none; or ingest is not running)\n"
    )


def test_summary_with_everything_accepted_is_one_line() -> None:
    """Nothing rejected or unseen: one line, no reasons."""
    assert summary(Tally(total=3, accepted=3), Path("e.ndjson"), "http") == (
        "published 3 lines of e.ndjson via http: 3 accepted, 0 exact duplicates, 0 rejected\n"
    )


# -- Progress --------------------------------------------------------------------------------


def test_without_a_terminal_progress_is_one_final_line() -> None:
    """A file or a pipe gets no bar (no carriage returns to garble a log), only the last count."""
    err = io.StringIO()
    progress = Progress(err, 5_000)
    progress.show(1_000)
    progress.show(1_234, final=True)
    assert err.getvalue() == "sent 1,234/5,000 lines\n"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_progress_is_a_bar_ending_at_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """rich draws the bar; its last frame shows lines sent of the total."""
    monkeypatch.setenv("COLUMNS", "100")
    err = Terminal()
    progress = Progress(err, 5_000)
    progress.show(2_500)
    progress.show(5_000, final=True)
    text = err.getvalue()
    assert "publishing" in text
    assert "\x1b[32m5000/5000\x1b[0m lines" in text  # the last frame, coloured
    assert text.endswith("\n\x1b[?25h")  # stopped: the cursor shown again


# -- what ingest answers over HTTP -----------------------------------------------------------


class FakeIngest:
    """Answers ``POST /v1/events`` as ``script`` says, request by request, through httpx's
    in-memory transport; accepts whatever it is given when the script says 202."""

    def __init__(self, *script: tuple[int, dict[str, str]]) -> None:
        self.script = list(script)
        self.bodies: list[bytes] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.content)
        status, headers = self.script.pop(0) if self.script else (202, {})
        if status in (202,):
            ids = [e["event_id"] for e in json.loads(request.content)]
            return httpx.Response(202, json={"accepted": ids, "duplicates": [], "rejected": []})
        return httpx.Response(status, headers=headers, json={"error": f"scripted {status}"})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))


def _event_lines(count: int) -> list[tuple[int, bytes]]:
    return [(n + 1, json.dumps({"event_id": f"e-{n}"}).encode()) for n in range(count)]


class Sleeps:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def _publish(ingest: FakeIngest, lines: list[tuple[int, bytes]], wait_s: float = 30.0) -> Tally:
    clock = Sleeps()
    tally = publish_http(
        lines,
        "http://ingest",
        None,
        io.StringIO(),
        wait_s=wait_s,
        client=ingest.client(),
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    tally.examples.append(f"slept {clock.slept}")
    return tally


def test_503_is_retried_after_retry_after_and_nothing_accepted_is_sent_twice() -> None:
    """Two batches: the first accepted; the second refused with 503 twice (Retry-After 5 and
    3), then accepted. Only the refused batch is sent again."""
    ingest = FakeIngest((202, {}), (503, {"Retry-After": "5"}), (503, {"Retry-After": "3"}))
    tally = _publish(ingest, _event_lines(600))
    assert tally.stopped is None
    assert tally.accepted == 600
    assert tally.examples[-1] == "slept [5.0, 3.0]"
    assert len(ingest.bodies) == 4
    assert ingest.bodies[1] == ingest.bodies[2] == ingest.bodies[3] != ingest.bodies[0]


def test_503_for_longer_than_wait_stops_and_says_what_was_not_sent() -> None:
    ingest = FakeIngest((202, {}), *[(503, {"Retry-After": "5"})] * 20)
    tally = _publish(ingest, _event_lines(600), wait_s=12)
    assert tally.accepted == 500
    assert tally.stopped == (
        "ingest at http://ingest was not ready for 12 s (503: scripted 503); nothing from "
        "line 501 on was sent"
    )
    assert tally.examples[-1] == "slept [5.0, 5.0, 2.0]"


def test_429_waits_its_retry_after_and_resends_the_batch_beyond_wait() -> None:
    """Over the publisher's rate: the refused batch is sent again after each Retry-After, for as
    long as it takes (a throttle is not an outage, so --wait does not end it); counted."""
    ingest = FakeIngest((202, {}), *[(429, {"Retry-After": "4"})] * 5)
    tally = _publish(ingest, _event_lines(600), wait_s=10)
    assert tally.stopped is None
    assert tally.accepted == 600
    assert (tally.throttled, tally.throttled_s) == (5, 20.0)
    assert tally.examples[-1] == "slept [4.0, 4.0, 4.0, 4.0, 4.0]"
    assert len(set(ingest.bodies[1:])) == 1
    assert "slowed to the publisher's rate: 5 answers 429, 20 s waited" in summary(
        tally, Path("f.ndjson"), "http"
    )


def test_403_is_read_like_422_with_the_forbidden_events_rejected() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        ids = [e["event_id"] for e in json.loads(request.content)]
        forbidden = {"index": 1, "reason": "forbidden", "detail": "not yours", "errors": []}
        body = {"accepted": [ids[0]], "duplicates": [], "rejected": [forbidden]}
        return httpx.Response(403, json=body)

    tally = publish_http(
        _event_lines(2),
        "http://ingest",
        "t",
        io.StringIO(),
        client=httpx.Client(transport=httpx.MockTransport(handle)),
    )
    assert tally.stopped is None
    assert tally.accepted == 1
    assert tally.rejected == {"forbidden": 1}


def test_401_stops_at_once_naming_the_token_variable() -> None:
    ingest = FakeIngest((401, {}))
    tally = _publish(ingest, _event_lines(10))
    assert len(ingest.bodies) == 1
    assert tally.accepted == 0
    assert tally.stopped is not None
    assert tally.stopped.startswith("ingest at http://ingest refused the token (401: scripted")
    assert "INGEST_API_TOKEN" in tally.stopped


def test_413_splits_the_batch_until_ingest_takes_it() -> None:
    """413 for 500 and for 250 events, then every half accepted: all 500 accepted once."""
    ingest = FakeIngest((413, {}), (413, {}))
    tally = _publish(ingest, _event_lines(500))
    assert tally.accepted == 500
    sizes = [len(json.loads(b)) for b in ingest.bodies]
    assert sizes == [500, 250, 125, 125, 250]


def test_413_for_a_single_line_is_that_line_not_sent() -> None:
    ingest = FakeIngest((413, {}))
    tally = _publish(ingest, _event_lines(1))
    assert tally.rejected == Counter({"request_too_large": 1})
    assert tally.stopped is None


def test_an_unexpected_status_stops_with_it() -> None:
    ingest = FakeIngest((500, {}))
    tally = _publish(ingest, _event_lines(3))
    assert tally.stopped == (
        "ingest at http://ingest answered 500 (scripted 500); nothing from line 1 on was sent"
    )
