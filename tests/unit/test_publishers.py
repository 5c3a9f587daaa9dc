"""The publishers file, the scope check, who a token identifies, and the rate buckets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from contracts.codec import RejectReason
from contracts.examples import valid_examples
from contracts.publishers import (
    PublishersFile,
    PublishersFileError,
    Rate,
    load_publishers,
    parse_publishers,
    token_sha256,
)
from services.ingest.access import ANONYMOUS, Access
from services.ingest.dedup import DedupWindow
from services.ingest.rate_limits import TokenBucket, retry_after_header
from services.ingest.triage import Canonical, DeadLetter, SourceRecord, triage

pytestmark = pytest.mark.unit

KZ_TOKEN = "kz-token-for-tests"
OFFICE_TOKEN = "office-token-for-tests"
FILE = Path("publishers.yaml")
TEXT = f"""
publishers:
  customs-kz:
    token_sha256: {token_sha256(KZ_TOKEN)}
    types: [trade.shipment]
    sources: [customs-kz]
    rate: {{events_per_second: 2, burst: 4}}
  project-office:
    token_sha256: {token_sha256(OFFICE_TOKEN)}
    types: [project.milestone]
    sources: [project-office, pmo-backfill]
  customs-by:
    token_sha256: null
    types: [trade.shipment]
    sources: [customs-by]
"""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def publishers(text: str = TEXT) -> PublishersFile:
    return parse_publishers(text, FILE)


def test_the_committed_publishers_file_is_valid_and_names_every_upstream() -> None:
    """deploy/publishers.yaml loads; each event type has at least one publisher."""
    committed = load_publishers(Path(__file__).parents[2] / "deploy" / "publishers.yaml")
    types = {t for p in committed.publishers.values() for t in p.types}
    assert types == {"trade.shipment", "project.milestone", "hiring.report"}
    assert {"customs-kz", "customs-by", "project-office"} <= committed.publishers.keys()


@pytest.mark.parametrize(
    ("event_type", "source", "refusal"),
    [
        ("trade.shipment", "customs-kz", None),
        (
            "project.milestone",
            "customs-kz",
            "publisher 'customs-kz' may publish trade.shipment, not project.milestone",
        ),
        (
            "trade.shipment",
            "customs-by",
            "publisher 'customs-kz' may publish with source 'customs-kz', not 'customs-by'",
        ),
    ],
)
def test_the_scope_names_the_type_or_the_source_refused(
    event_type: str, source: str, refusal: str | None
) -> None:
    publisher = publishers().publishers["customs-kz"]
    assert publisher.refusal("customs-kz", event_type, source) == refusal


def test_a_publisher_may_have_several_sources() -> None:
    office = publishers().publishers["project-office"]
    assert office.refusal("project-office", "project.milestone", "pmo-backfill") is None


def test_a_token_identifies_its_publisher_with_its_scope_and_bucket() -> None:
    access = Access(publishers=publishers(), clock=Clock())
    kz = access.identify(f"Bearer {KZ_TOKEN}")
    assert kz is not None
    assert kz.name == "customs-kz"
    assert kz.scope is not None
    assert kz.scope("hiring.report", "customs-kz") is not None
    assert kz.bucket is not None
    office = access.identify(f"bearer {OFFICE_TOKEN}")
    assert office is not None
    assert office.name == "project-office"
    assert office.bucket is None
    assert access.names == ("customs-kz", "project-office", "customs-by")


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer ",
        f"Basic {KZ_TOKEN}",
        "Bearer wrong",
        f"Bearer {token_sha256(KZ_TOKEN)}",
    ],
)
def test_an_unknown_missing_or_hash_instead_of_token_is_refused(header: str) -> None:
    """Sending the stored hash itself does not authenticate: the hash of it is looked up."""
    assert Access(publishers=publishers()).identify(header) is None


def test_open_and_shared_token_modes_are_anonymous() -> None:
    assert Access().identify("").name == ANONYMOUS  # type: ignore[union-attr]
    shared = Access(token=SecretStr("s3"))
    assert shared.identify("Bearer s3") is not None
    assert shared.identify("Bearer s4") is None
    assert shared.names == (ANONYMOUS,)


def test_a_shared_token_and_a_publishers_file_exclude_each_other() -> None:
    with pytest.raises(ValueError, match="exclude each other"):
        Access(token=SecretStr("s3"), publishers=publishers())


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (
            TEXT.replace(token_sha256(KZ_TOKEN), "abc"),
            "publishers.customs-kz.token_sha256",
            "pattern",
        ),
        (
            TEXT.replace("[trade.shipment]", "[trade.shipments]", 1),
            "publishers.customs-kz.types",
            "trade.shipment",
        ),
        (
            TEXT.replace("sources: [customs-kz]", "sources: []"),
            "publishers.customs-kz.sources",
            "at least 1",
        ),
        (
            TEXT.replace("events_per_second: 2", "events_per_second: 0"),
            "events_per_second",
            "greater than 0",
        ),
        (TEXT.replace("customs-kz:", "Customs KZ:"), "publishers", "pattern"),
        (TEXT.replace("customs-kz:", "kafka:"), "", "reserved"),
        (TEXT.replace(token_sha256(OFFICE_TOKEN), token_sha256(KZ_TOKEN)), "", "same token_sha256"),
        (
            TEXT.replace("    sources: [customs-by]\n", "    sources: [customs-by]\n    tokn: x\n"),
            "tokn",
            "Extra inputs",
        ),
    ],
)
def test_a_bad_publishers_file_names_the_line_and_field(
    text: str, field: str, message: str
) -> None:
    with pytest.raises(PublishersFileError) as raised:
        publishers(text)
    assert str(raised.value).startswith("invalid publishers file\npublishers.yaml:")
    assert field in str(raised.value)
    assert message in str(raised.value)


def test_the_bucket_takes_whole_requests_and_says_how_long_to_wait() -> None:
    """Burst 4 at 2 events/s: 4 pass at once, the next 3 wait 1.5 s, and pass after it."""
    bucket = TokenBucket.full(Rate(events_per_second=2, burst=4), now=0.0)
    assert bucket.take(4, now=0.0) == 0
    assert bucket.take(3, now=0.0) == pytest.approx(1.5)
    assert bucket.take(3, now=1.0) == pytest.approx(0.5)  # nothing taken by a refusal
    assert bucket.take(3, now=1.5) == 0
    assert bucket.take(1, now=100.0) == 0
    assert bucket.tokens == 3  # refilled only up to the burst


def test_what_a_refused_publish_took_is_given_back_up_to_the_burst() -> None:
    bucket = TokenBucket.full(Rate(events_per_second=2, burst=4), now=0.0)
    assert bucket.take(3, now=0.0) == 0
    bucket.give_back(3)
    assert bucket.take(4, now=0.0) == 0
    bucket.give_back(10)
    assert bucket.tokens == 4


def test_a_request_over_the_burst_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="over the burst"):
        TokenBucket.full(Rate(events_per_second=2, burst=4), now=0.0).take(5, now=0.0)


@pytest.mark.parametrize(("wait", "header"), [(0.01, "1"), (1.0, "1"), (1.2, "2"), (59.5, "60")])
def test_retry_after_is_whole_seconds_rounded_up(wait: float, header: str) -> None:
    assert retry_after_header(wait) == header


def test_an_event_out_of_scope_is_forbidden_and_its_id_is_not_remembered() -> None:
    """Refused before dedup: the right publisher can still send the same event afterwards."""

    raw = next(e.raw for e in valid_examples() if e.event_type == "trade.shipment")
    office = Access(publishers=publishers()).identify(f"Bearer {OFFICE_TOKEN}")
    assert office is not None
    window = DedupWindow(10)
    pending = window.pending()
    record = SourceRecord("http:/v1/events", None, None, None, raw, None)

    refused = triage(record, pending, office.scope)
    pending.commit()

    assert isinstance(refused, DeadLetter)
    assert refused.rejection.reason is RejectReason.FORBIDDEN
    assert refused.rejection.detail.startswith("publisher 'project-office' may publish")
    assert isinstance(triage(record, window.pending(), None), Canonical)


def test_the_scope_reads_the_source_of_an_event_not_in_normal_form() -> None:
    """Both decoding paths apply the scope: a non-canonical spelling (spaces, lower-case country)
    goes through the full decoder."""

    raw = (
        b'{ "event_id": "e-1", "type": "trade.shipment", "schema_version": 1,'
        b' "occurred_at": "2025-03-14T10:00:00+03:00", "source": "by-customs", "data":'
        b' {"shipment_id": "S-1", "origin": "kz", "destination": "BY", "mode": "road",'
        b' "commodity": "wheat", "tonnes": 5, "shipped_on": "2025-03-13"}}'
    )
    kz = Access(publishers=publishers()).identify(f"Bearer {KZ_TOKEN}")
    assert kz is not None
    outcome = triage(
        SourceRecord("h", None, None, None, raw, None), DedupWindow(1).pending(), kz.scope
    )
    assert isinstance(outcome, DeadLetter)
    assert outcome.rejection.reason is RejectReason.FORBIDDEN
    assert "not 'by-customs'" in outcome.rejection.detail
