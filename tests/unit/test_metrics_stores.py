"""``PackedShipments`` holds shipments packed and gives them back equal, by key and by ``get``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.events import TransportMode
from services.metrics.entities import Shipment
from services.metrics.stores import CodeTable, PackedShipments

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


def test_a_code_table_numbers_codes_once_in_order_and_gives_them_back() -> None:
    table = CodeTable()
    assert [table[c] for c in ("KZ", "BY", "KZ", "wheat", "BY")] == [0, 1, 0, 2, 1]
    assert [table.code(n) for n in range(3)] == ["KZ", "BY", "wheat"]


def test_stores_given_one_code_table_share_it_even_while_it_is_empty() -> None:
    shared = CodeTable()
    first, second = PackedShipments(shared), PackedShipments(shared)
    record = Shipment(1, "e-1", "KZ", "BY", TransportMode.ROAD, "wheat", 1, None, 700_000)
    first["S-1"] = record
    second["S-2"] = record._replace(origin="RU")
    assert dict(shared) == {"KZ": 0, "BY": 1, "wheat": 2, "RU": 3}
    assert second["S-2"] == record._replace(origin="RU")
