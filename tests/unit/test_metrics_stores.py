"""``PackedShipments`` holds shipments packed and gives them back equal, by key and by ``get``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events import TransportMode
from services.metrics.entities import Shipment
from services.metrics.stores import PackedShipments

_shipments = st.builds(
    Shipment,
    version_us=st.integers(0, 2**62),
    event_id=st.text(min_size=1, max_size=20),
    origin=st.sampled_from(["KZ", "BY", "RU"]),
    destination=st.sampled_from(["KZ", "BY", "CN"]),
    mode=st.sampled_from(list(TransportMode)),
    commodity=st.sampled_from(["wheat", "salt", "tractors"]),
    tonnes=st.integers(1, 2**64),  # over 2**63 is held unpacked
    value_usd=st.none() | st.integers(0, 2**64),
    day=st.integers(700_000, 800_000),
)


@settings(max_examples=200, deadline=None)
@given(
    held=st.dictionaries(st.text(min_size=1, max_size=10), _shipments, max_size=20),
    missing=st.text(min_size=11, max_size=12),
)
def test_what_goes_in_comes_out_equal_by_key_and_by_get(
    held: dict[str, Shipment], missing: str
) -> None:
    store = PackedShipments()
    for key, shipment in held.items():
        store[key] = shipment
    assert len(store) == len(held)
    for key, shipment in held.items():
        assert store[key] == shipment
        assert store.get(key) == shipment
    assert store.get(missing) is None
    assert store.get(missing, "default") == "default"
    assert dict(store.items()) == held
