"""The dedup window: classification, the pending overlay, commit-only membership, FIFO bounds,
and its refill from canonical records at start-up."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.dedup import DedupWindow, Remembered, Seen, remembered


def _accept(window: DedupWindow, *ids: str, content: bytes = b"a") -> None:
    """Accept ``ids`` into ``window`` in that order, one published batch each."""
    for event_id in ids:
        pending = window.pending()
        pending.admit(event_id, content)
        pending.commit()


def _window_with(capacity: int, *ids: str, content: bytes = b"a") -> DedupWindow:
    """A window that accepted ``ids`` (in that order, one batch each) with ``content``."""
    window = DedupWindow(capacity)
    _accept(window, *ids, content=content)
    return window


def _remembered(window: DedupWindow, *ids: str, content: bytes = b"a") -> list[str]:
    """Which of ``ids`` the window still knows (with ``content``)."""
    return [i for i in ids if window.lookup(i, content) is Seen.DUPLICATE]


def test_unknown_id_is_new() -> None:
    """An id the window has never accepted is NEW, both for lookup and for admit."""
    window = DedupWindow(10)
    assert window.lookup("e-1", b"a") is Seen.NEW
    assert window.pending().admit("e-1", b"a") is Seen.NEW


def test_accepted_id_with_same_content_is_duplicate() -> None:
    """After commit, the same id with the same bytes is a DUPLICATE."""
    window = _window_with(10, "e-1")
    assert window.lookup("e-1", b"a") is Seen.DUPLICATE
    assert window.pending().admit("e-1", b"a") is Seen.DUPLICATE


def test_accepted_id_with_other_content_is_conflict() -> None:
    """After commit, the same id with different bytes is a CONFLICT."""
    window = _window_with(10, "e-1")
    assert window.lookup("e-1", b"b") is Seen.CONFLICT
    assert window.pending().admit("e-1", b"b") is Seen.CONFLICT


def test_pending_overlay_sees_ids_admitted_earlier_in_the_batch() -> None:
    """Within one batch, a repeated id is DUPLICATE (same bytes) or CONFLICT (other bytes)."""
    pending = DedupWindow(10).pending()
    assert pending.admit("e-1", b"a") is Seen.NEW
    assert pending.admit("e-1", b"a") is Seen.DUPLICATE
    assert pending.admit("e-1", b"b") is Seen.CONFLICT
    assert pending.admit("e-2", b"a") is Seen.NEW


def test_conflicting_admit_does_not_replace_the_first_content() -> None:
    """A CONFLICT is not held: the id keeps the content it was first admitted with."""
    window = DedupWindow(10)
    pending = window.pending()
    pending.admit("e-1", b"a")
    pending.admit("e-1", b"b")
    pending.commit()
    assert window.lookup("e-1", b"a") is Seen.DUPLICATE
    assert window.lookup("e-1", b"b") is Seen.CONFLICT


def test_ids_join_the_window_only_on_commit() -> None:
    """Admitted ids are invisible to the window (and to other batches) until committed."""
    window = DedupWindow(10)
    pending = window.pending()
    pending.admit("e-1", b"a")
    assert len(window) == 0
    assert window.lookup("e-1", b"a") is Seen.NEW
    assert window.pending().admit("e-1", b"a") is Seen.NEW
    pending.commit()
    assert len(window) == 1
    assert window.lookup("e-1", b"a") is Seen.DUPLICATE


def test_discarded_pending_leaves_the_window_unchanged() -> None:
    """A batch whose publish failed (overlay dropped) can be retried: its ids are NEW again."""
    window = _window_with(10, "old")
    failed = window.pending()
    assert failed.admit("e-1", b"a") is Seen.NEW
    assert failed.admit("e-2", b"a") is Seen.NEW
    del failed

    retry = window.pending()
    assert retry.admit("e-1", b"a") is Seen.NEW
    assert retry.admit("e-2", b"a") is Seen.NEW
    assert len(window) == 1
    assert _remembered(window, "old", "e-1", "e-2") == ["old"]


def test_commit_empties_the_overlay() -> None:
    """After commit the overlay holds nothing: committing again adds nothing and moves nothing."""
    window = DedupWindow(2)
    pending = window.pending()
    pending.admit("e-1", b"a")
    pending.commit()
    _accept(window, "e-2")
    pending.commit()  # must not re-insert e-1 at the young end
    _accept(window, "e-3")
    assert _remembered(window, "e-1", "e-2", "e-3") == ["e-2", "e-3"]


def test_eviction_forgets_the_oldest_first() -> None:
    """Past capacity, the earliest accepted ids are forgotten and become NEW again."""
    window = _window_with(3, "e-1", "e-2", "e-3", "e-4", "e-5")
    assert len(window) == 3
    assert _remembered(window, "e-1", "e-2", "e-3", "e-4", "e-5") == ["e-3", "e-4", "e-5"]
    assert window.lookup("e-1", b"other") is Seen.NEW


def test_one_batch_larger_than_capacity_keeps_its_last_ids() -> None:
    """A single commit of more ids than capacity keeps the last ``capacity`` of them, in order."""
    window = DedupWindow(2)
    pending = window.pending()
    for event_id in ("e-1", "e-2", "e-3", "e-4"):
        pending.admit(event_id, b"a")
    pending.commit()
    assert len(window) == 2
    assert _remembered(window, "e-1", "e-2", "e-3", "e-4") == ["e-3", "e-4"]


def test_recommitting_a_remembered_id_moves_it_to_the_young_end() -> None:
    """An id committed again (by an overlay opened before its first commit) becomes youngest."""
    window = DedupWindow(3)
    early = window.pending()  # opened while e-1 is still unknown
    assert early.admit("e-1", b"a") is Seen.NEW
    _accept(window, "e-1", "e-2", "e-3")
    early.commit()  # e-1 again: now the youngest, so e-2 is the oldest
    _accept(window, "e-4")
    assert _remembered(window, "e-1", "e-2", "e-3", "e-4") == ["e-1", "e-3", "e-4"]


def test_a_duplicate_does_not_refresh_an_ids_age() -> None:
    """The window holds the last accepted ids: a dropped duplicate does not make an id younger."""
    window = _window_with(2, "e-1", "e-2")
    batch = window.pending()
    assert batch.admit("e-1", b"a") is Seen.DUPLICATE
    batch.commit()
    _accept(window, "e-3")
    assert _remembered(window, "e-1", "e-2", "e-3") == ["e-2", "e-3"]


def test_capacity_zero_remembers_nothing() -> None:
    """With capacity 0 every committed id is forgotten at once; in-batch repeats still show."""
    window = DedupWindow(0)
    pending = window.pending()
    assert pending.admit("e-1", b"a") is Seen.NEW
    assert pending.admit("e-1", b"a") is Seen.DUPLICATE
    pending.commit()
    assert len(window) == 0
    assert window.lookup("e-1", b"a") is Seen.NEW
    assert window.pending().admit("e-1", b"a") is Seen.NEW


@pytest.mark.parametrize("capacity", [-1, -100])
def test_negative_capacity_is_refused(capacity: int) -> None:
    """A negative capacity raises ValueError instead of building a window."""
    with pytest.raises(ValueError, match="capacity"):
        DedupWindow(capacity)


def test_memory_is_bounded_by_capacity() -> None:
    """After many more commits than capacity, exactly ``capacity`` ids are remembered."""
    capacity = 50
    window = DedupWindow(capacity)
    for batch_number in range(200):
        pending = window.pending()
        for i in range(7):
            pending.admit(f"e-{batch_number}-{i}", b"payload")
        pending.commit()
        assert len(window) <= capacity
    assert len(window) == capacity
    # The survivors are the last 50 of the 1400 accepted ids.
    assert window.lookup("e-199-6", b"payload") is Seen.DUPLICATE
    assert window.lookup("e-192-6", b"payload") is Seen.DUPLICATE
    assert window.lookup("e-192-5", b"payload") is Seen.NEW


def test_ids_and_contents_are_compared_exactly() -> None:
    """Ids and contents differing only in case or one byte are distinct."""
    window = _window_with(10, "e-1", content=b'{"x":1}')
    assert window.lookup("E-1", b'{"x":1}') is Seen.NEW
    assert window.lookup("e-1", b'{"x":2}') is Seen.CONFLICT


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(min_value=0, max_value=8),
    batches=st.lists(
        st.lists(st.tuples(st.sampled_from("abcdefghij"), st.sampled_from([b"x", b"y"]))),
        max_size=12,
    ),
)
def test_window_matches_a_fifo_model(capacity: int, batches: list[list[tuple[str, bytes]]]) -> None:
    """Against a simple FIFO model: same classifications and same remembered ids, always bounded."""
    window = DedupWindow(capacity)
    model: dict[str, bytes] = {}  # insertion order = age; the model re-inserts like the window
    for batch in batches:
        pending = window.pending()
        held: dict[str, bytes] = {}
        for event_id, content in batch:
            known = held.get(event_id, model.get(event_id))
            expected = (
                Seen.NEW if known is None else Seen.DUPLICATE if known == content else Seen.CONFLICT
            )
            assert pending.admit(event_id, content) is expected
            if expected is Seen.NEW:
                held[event_id] = content
        pending.commit()
        for event_id, content in held.items():
            model.pop(event_id, None)
            model[event_id] = content
        while len(model) > capacity:
            del model[next(iter(model))]
        assert len(window) == len(model) <= capacity
        for event_id in "abcdefghij":
            known = model.get(event_id)
            expected_x = (
                Seen.NEW if known is None else Seen.DUPLICATE if known == b"x" else Seen.CONFLICT
            )
            assert window.lookup(event_id, b"x") is expected_x


# -- refilled from the canonical topic ---------------------------------------------------------


def _canonical(event_id: str, amount: str = "1") -> bytes:
    """Canonical bytes as ingest publishes them (any JSON object with an event_id will do)."""
    return json.dumps({"event_id": event_id, "data": {"tonnes": amount}}).encode()


def _read_back(*items: tuple[int, int, int, bytes]) -> list[Remembered]:
    """Entries for canonical records given as (timestamp, partition, offset, value)."""
    entries = [remembered(*item) for item in items]
    assert None not in entries
    return [e for e in entries if e is not None]


def test_restored_ids_are_duplicates_with_their_content_and_conflicts_with_other_content() -> None:
    """After a restore from canonical records, the same canonical bytes are a DUPLICATE and
    other bytes under the same id a CONFLICT: what the window said before the restart."""
    window = DedupWindow(10)
    window.restore(_read_back((1, 0, 0, _canonical("e-1")), (2, 1, 0, _canonical("e-2"))))
    assert len(window) == 2
    assert window.lookup("e-1", _canonical("e-1")) is Seen.DUPLICATE
    assert window.pending().admit("e-2", _canonical("e-2", amount="2")) is Seen.CONFLICT
    assert window.lookup("e-3", _canonical("e-3")) is Seen.NEW


def test_restore_keeps_the_youngest_by_timestamp_across_partitions() -> None:
    """Records from several partitions are aged by timestamp (then partition, offset): a full
    window keeps the youngest, and evicts the oldest of those first afterwards."""
    window = DedupWindow(2)
    window.restore(
        _read_back(
            (30, 1, 7, _canonical("young")),
            (10, 0, 5, _canonical("old")),
            (20, 2, 0, _canonical("middle")),
        )
    )
    assert _remembered_canonical(window, "old", "middle", "young") == ["middle", "young"]
    _accept(window, "next")
    assert _remembered_canonical(window, "middle", "young") == ["young"]


def _remembered_canonical(window: DedupWindow, *ids: str) -> list[str]:
    return [i for i in ids if window.lookup(i, _canonical(i)) is Seen.DUPLICATE]


def test_restore_replaces_what_the_window_held() -> None:
    """A restore (a retried start-up calls it again) starts from nothing, not from before."""
    window = _window_with(10, "before")
    window.restore(_read_back((1, 0, 0, _canonical("e-1"))))
    assert _remembered(window, "before") == []
    assert len(window) == 1


def test_an_id_read_twice_keeps_its_youngest_content() -> None:
    """An id re-published (at least once) or re-read is one entry with its youngest content."""
    window = DedupWindow(10)
    window.restore(
        _read_back((2, 0, 9, _canonical("e-1", amount="2")), (1, 0, 3, _canonical("e-1")))
    )
    assert len(window) == 1
    assert window.lookup("e-1", _canonical("e-1", amount="2")) is Seen.DUPLICATE


def test_capacity_zero_restores_nothing() -> None:
    """With the window off (capacity 0), a restore keeps nothing either."""
    window = DedupWindow(0)
    window.restore(_read_back((1, 0, 0, _canonical("e-1"))))
    assert len(window) == 0


@pytest.mark.parametrize(
    "value",
    [b"", b"not json", b"[1, 2]", b'"text"', b'{"event_id": 7}', b'{"type": "x"}', b"\xff\xfe"],
)
def test_a_canonical_value_without_an_event_id_is_not_remembered(value: bytes) -> None:
    """Anything on the topic that is not an object with a string event_id is skipped."""
    assert remembered(1, 0, 0, value) is None
