"""Payloads: the Alertmanager v2 body, the signed webhook body and the chat text."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from contracts.records import IDENTITY_LABELS, AlertState, AlertTransition
from services.alerts.lifecycle import AlertBook, Moment
from services.alerts.payloads import (
    alertmanager_alerts,
    chat_body,
    chat_text,
    headline,
    signature,
    verify_signature,
    webhook_body,
)
from tests.unit.test_alerts_builders import (
    R0,
    ROADMAP_ID,
    SCENARIO_LIFECYCLE,
    W0,
    jobs_board,
    jobs_roadmap,
    lifecycle,
    step,
    transition,
    utc,
)

SECRET = b"webhook-secret"
GENERATOR = "http://alerts:8080/alerts"
FIRED_AT = W0 + timedelta(minutes=10)


def _firing(repeat: int = 0) -> AlertTransition:
    return transition(
        AlertState.FIRING,
        at=FIRED_AT,
        started_at=W0,
        repeat=repeat,
        previous_at=FIRED_AT - timedelta(minutes=1) if repeat else None,
    )


def _resolved() -> AlertTransition:
    return transition(
        AlertState.RESOLVED,
        at=W0 + timedelta(hours=2),
        started_at=W0,
        annotations={
            "summary": "Jobs: 230 behind the trajectory (17%)",
            "resolved_at": "2028-10-01T12:42:30+00:00",
            "runbook_url": "https://example.org/docs/runbooks.md#jobs_created",
        },
    )


# -- Alertmanager ----------------------------------------------------------------------------


def test_alertmanager_firing_body() -> None:
    """One alert with exactly the five identity labels; startsAt is the episode start (W0 =
    2031-03-02T08:00Z), endsAt four 1-minute repeats after ``at`` (08:10 + 4 min = 08:14)."""
    (alert,) = alertmanager_alerts(
        _firing(), generator_url=GENERATOR, repeat_interval=timedelta(minutes=1)
    )
    assert set(alert) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    assert alert["labels"] == {
        "alertname": "RoadmapTargetBehind",
        "indicator": "jobs_created",
        "severity": "warning",
        "owner": "industry-office",
        "roadmap": ROADMAP_ID,
    }
    assert tuple(alert["labels"]) == IDENTITY_LABELS
    assert alert["startsAt"] == "2031-03-02T08:00:00Z"
    assert alert["endsAt"] == "2031-03-02T08:14:00Z"
    assert alert["generatorURL"] == GENERATOR
    assert alert["annotations"]["dedup_key"] == "0123456789abcdef0123456789abcdef"
    assert alert["annotations"]["summary"] == "Jobs: 230 behind the trajectory (17%)"


def test_alertmanager_ends_after_four_repeat_intervals() -> None:
    """With a 3-minute repeat interval, endsAt is at + 12 minutes (08:22)."""
    (alert,) = alertmanager_alerts(
        _firing(repeat=2), generator_url=GENERATOR, repeat_interval=timedelta(minutes=3)
    )
    assert alert["endsAt"] == "2031-03-02T08:22:00Z"


def test_alertmanager_resolved_ends_at_its_time() -> None:
    """A resolved alert's endsAt is its own ``at`` (W0 + 2h = 10:00Z)."""
    (alert,) = alertmanager_alerts(
        _resolved(), generator_url=GENERATOR, repeat_interval=timedelta(minutes=1)
    )
    assert alert["endsAt"] == "2031-03-02T10:00:00Z"
    assert alert["startsAt"] == "2031-03-02T08:00:00Z"


def test_alertmanager_leaves_out_empty_annotations_and_extra_labels() -> None:
    """Empty annotations (a stale alert's blank last_event_at) are left out; labels beyond the
    identity ones are not sent."""
    record = transition(
        AlertState.FIRING,
        at=FIRED_AT,
        started_at=W0,
        annotations={"summary": "stale", "last_event_at": ""},
    ).model_copy(update={"labels": {**_firing().labels, "extra": "x"}})
    (alert,) = alertmanager_alerts(
        record, generator_url=GENERATOR, repeat_interval=timedelta(minutes=1)
    )
    assert alert["annotations"] == {
        "summary": "stale",
        "dedup_key": "0123456789abcdef0123456789abcdef",
    }
    assert set(alert["labels"]) == set(IDENTITY_LABELS)


def test_alertmanager_body_is_json_serialisable() -> None:
    """The list goes out as JSON as it is."""
    alerts = alertmanager_alerts(
        _firing(), generator_url=GENERATOR, repeat_interval=timedelta(minutes=1)
    )
    assert json.loads(json.dumps(alerts)) == alerts


# -- webhook ---------------------------------------------------------------------------------


def test_signature_matches_a_known_hmac_sha256_vector() -> None:
    """HMAC-SHA256(key "key", "The quick brown fox jumps over the lazy dog") is the published
    value f7bc83f4...2d1a3cd8."""
    body = b"The quick brown fox jumps over the lazy dog"
    assert signature(b"key", body) == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


def test_webhook_body_is_the_record_and_its_signature_verifies() -> None:
    """The body parses back to the record; a receiver recomputing HMAC-SHA256 over the exact
    bytes with the shared secret gets the header value."""
    record = _firing(repeat=1)
    body = webhook_body(record)
    assert AlertTransition.model_validate_json(body) == record
    header = signature(SECRET, body)
    independent = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    assert header == independent
    assert verify_signature(SECRET, body, header)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body: body.replace(b'"repeat":1', b'"repeat":2'),
        lambda body: body + b" ",
        lambda body: body[:-1],
    ],
)
def test_signature_fails_for_a_tampered_body(tamper: Callable[[bytes], bytes]) -> None:
    """Any change to the body after signing fails verification."""
    body = webhook_body(_firing(repeat=1))
    header = signature(SECRET, body)
    changed = tamper(body)
    assert changed != body
    assert not verify_signature(SECRET, changed, header)


def test_signature_fails_with_another_secret_or_a_bare_hex() -> None:
    """The secret matters, and so does the ``sha256=`` prefix."""
    body = webhook_body(_firing())
    header = signature(SECRET, body)
    assert not verify_signature(b"other-secret", body, header)
    assert not verify_signature(SECRET, body, header.removeprefix("sha256="))


# -- chat ------------------------------------------------------------------------------------


def test_headlines() -> None:
    """State, reminder number for repeats, alert name, indicator, severity and owner."""
    assert headline(_firing()) == (
        "[FIRING] RoadmapTargetBehind jobs_created (warning, owner industry-office)"
    )
    assert headline(_firing(repeat=3)) == (
        "[FIRING, reminder 3] RoadmapTargetBehind jobs_created (warning, owner industry-office)"
    )
    assert headline(_resolved()).startswith("[RESOLVED] RoadmapTargetBehind jobs_created")


def test_chat_text_firing() -> None:
    """Headline, description, since (minutes, UTC) and runbook, one per line."""
    assert chat_text(_firing()).splitlines() == [
        "[FIRING] RoadmapTargetBehind jobs_created (warning, owner industry-office)",
        "Jobs: 1,120 of 1,800 jobs (62%); 230 behind (17%).",
        "Since 2031-03-02 08:00 UTC",
        "Runbook: https://example.org/docs/runbooks.md#jobs_created",
    ]


def test_chat_text_resolved_uses_the_summary_without_a_description() -> None:
    """Without a description the summary is used, marked as the figures from when it last
    fired; resolved adds the resolution time."""
    assert chat_text(_resolved()).splitlines() == [
        "[RESOLVED] RoadmapTargetBehind jobs_created (warning, owner industry-office)",
        "Cleared. When it last fired: Jobs: 230 behind the trajectory (17%)",
        "Since 2031-03-02 08:00 UTC; resolved 2028-10-01 12:42 UTC",
        "Runbook: https://example.org/docs/runbooks.md#jobs_created",
    ]


def test_chat_body_of_an_evaluated_alert() -> None:
    """End to end from the board: the chat body of the firing TargetBehind alert holds the
    headline, the hand-computed sentence and the runbook path."""
    roadmap = jobs_roadmap()
    board = jobs_board(roadmap, 1120, R0, utc(2028, 9, 30))
    book = AlertBook()
    life = lifecycle(**SCENARIO_LIFECYCLE)
    step(book, roadmap, board, Moment(R0, W0), life)
    (firing,) = step(
        book, roadmap, board, Moment(R0 + timedelta(minutes=10), W0 + timedelta(minutes=10)), life
    )
    text = json.loads(chat_body(firing))["text"]
    assert text.splitlines()[0] == (
        "[FIRING] RoadmapTargetBehind jobs_created (warning, owner industry-office)"
    )
    assert (
        "Jobs created by joint industrial projects: 1,120 of 1,800 jobs (62%); expected 1,350 "
        "by now on the linear trajectory to 2029-12-31; 230 behind (17%)."
    ) in text
    assert "Since 2028-10-01 12:00 UTC" in text
    assert "Runbook: docs/runbooks.md#jobs_created" in text
