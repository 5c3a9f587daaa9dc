"""What each kind of receiver is sent for an alert record. Pure.

- Alertmanager API v2: a one-alert list with the identity labels, the annotations, ``startsAt``,
  ``endsAt`` and ``generatorURL``. A firing alert's ``endsAt`` lies a few repeat intervals ahead
  (Alertmanager resolves it by itself if the re-sends stop); a resolved one's is its time.
- Webhook: the record itself as JSON (schema ``contracts/schemas/roadmap.alerts.v1.json``),
  signed with HMAC-SHA256 over the exact body: ``X-Roadmap-Signature: sha256=<hex>``.
- Chat (Slack-compatible): ``{"text": ...}`` with a first line to triage by.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any

from contracts.records import IDENTITY_LABELS, AlertState, AlertTransition
from services.alerts.wording import moment

SIGNATURE_HEADER = "X-Roadmap-Signature"
DEDUP_HEADER = "X-Roadmap-Dedup-Key"
ENDS_AFTER_REPEATS = 4
"""A firing alert stays firing in Alertmanager for this many repeat intervals without a re-send."""


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def alertmanager_alerts(
    record: AlertTransition, *, generator_url: str, repeat_interval: timedelta
) -> list[dict[str, Any]]:
    """The body of ``POST /api/v2/alerts`` for ``record``."""
    if record.state is AlertState.RESOLVED:
        ends = record.at
    else:
        ends = record.at + repeat_interval * ENDS_AFTER_REPEATS
    annotations = {k: v for k, v in record.annotations.items() if v}
    annotations["dedup_key"] = record.dedup_key
    return [
        {
            "labels": {name: record.labels[name] for name in IDENTITY_LABELS},
            "annotations": annotations,
            "startsAt": _rfc3339(min(record.started_at, record.at)),
            "endsAt": _rfc3339(ends),
            "generatorURL": generator_url,
        }
    ]


def webhook_body(record: AlertTransition) -> bytes:
    return record.model_dump_json().encode()


def signature(secret: bytes, body: bytes) -> str:
    """The ``X-Roadmap-Signature`` value: ``sha256=`` and the hex HMAC of ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(signature(secret, body), header)


def headline(record: AlertTransition) -> str:
    """``[FIRING] RoadmapTargetBehind jobs_created (warning, owner industry-office)``."""
    state = record.state.value.upper()
    if record.state is AlertState.FIRING and record.repeat:
        state += f", reminder {record.repeat}"
    labels = record.labels
    return (
        f"[{state}] {record.alertname.value} {labels.get('indicator', '')} "
        f"({labels.get('severity', '')}, owner {labels.get('owner', '')})"
    )


def chat_text(record: AlertTransition) -> str:
    """Headline, what is wrong, since when, and the runbook."""
    notes = record.annotations
    what = notes.get("description", notes.get("summary", ""))
    if record.state is AlertState.RESOLVED and what:
        what = f"Cleared. When it last fired: {what}"  # the figures are from then, not now
    lines = [headline(record), what]
    since = f"Since {moment(record.since)}"
    if record.state is AlertState.RESOLVED:
        resolved = notes.get("resolved_at")
        since += f"; resolved {moment(datetime.fromisoformat(resolved) if resolved else record.at)}"
    lines.append(since)
    if notes.get("runbook_url"):
        lines.append(f"Runbook: {notes['runbook_url']}")
    return "\n".join(line for line in lines if line)


def chat_body(record: AlertTransition) -> bytes:
    return json.dumps({"text": chat_text(record)}).encode()
