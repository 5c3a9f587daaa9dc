"""Where the fold keeps shipments: packed into bytes, because there are millions of them.

A shipment held as a tuple of Python objects costs about 420 bytes; packed with ``struct``
(codes replaced by small integers from a shared table) it is a ~90-byte ``bytes``, which keeps a
million shipments well under 300 MB. Reading a record back (only needed for a correction or a
re-delivery) unpacks it. Projects and hiring reports are few and stay plain tuples.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, MutableMapping
from typing import Any

from contracts.events import TransportMode
from services.metrics.entities import Shipment

_LAYOUT = struct.Struct(
    "<qiqqIIBI"
)  # version, day, tonnes, value (or -1), origin, dest, mode, commodity
_NO_VALUE = -1
_MODES = list(TransportMode)
_MODE_INDEX: dict[str, int] = {mode: i for i, mode in enumerate(_MODES)}


class CodeTable(dict[str, int]):
    """Each distinct code string once, numbered in order of first appearance: ``table[code]``
    is its number (a plain dictionary lookup once the code is known), ``code(number)`` the
    code back."""

    def __init__(self) -> None:
        super().__init__()
        self._codes: list[str] = []

    def __missing__(self, code: str) -> int:
        number = self[code] = len(self._codes)
        self._codes.append(code)
        return number

    def code(self, number: int) -> str:
        return self._codes[number]


_INT64 = 2**63


class PackedShipments(MutableMapping[str, Shipment]):
    """``shipment_id -> Shipment``, stored as packed bytes.

    An amount beyond 64 bits (the contract allows up to 10^18 units, 10^24 millionths) cannot be
    packed: such a rare record is kept as the tuple itself.
    """

    def __init__(self, codes: CodeTable | None = None) -> None:
        self._rows: dict[str, bytes | Shipment] = {}
        self._codes = codes if codes is not None else CodeTable()

    def _pack(self, record: Shipment) -> bytes | Shipment:
        if record.tonnes >= _INT64 or (record.value_usd or 0) >= _INT64:
            return record
        codes = self._codes
        head = _LAYOUT.pack(
            record.version_us,
            record.day,
            record.tonnes,
            _NO_VALUE if record.value_usd is None else record.value_usd,
            codes[record.origin],
            codes[record.destination],
            _MODE_INDEX[record.mode],  # a member or its value: both hash as the value
            codes[record.commodity],
        )
        return head + record.event_id.encode("utf-8")

    def _unpack(self, row: bytes) -> Shipment:
        version, day, tonnes, value, origin, destination, mode, commodity = _LAYOUT.unpack_from(row)
        code = self._codes.code
        return Shipment(
            version,
            row[_LAYOUT.size :].decode("utf-8"),
            code(origin),
            code(destination),
            _MODES[mode],
            code(commodity),
            tonnes,
            None if value == _NO_VALUE else value,
            day,
        )

    def __getitem__(self, key: str) -> Shipment:
        row = self._rows[key]
        return row if isinstance(row, Shipment) else self._unpack(row)

    def get(self, key: str, default: Any = None) -> Any:
        """One dictionary lookup (the mapping mixin's ``get`` raises and catches a KeyError for
        every new shipment: 3% of a replay)."""
        row = self._rows.get(key)
        if row is None:
            return default
        return row if isinstance(row, Shipment) else self._unpack(row)

    def __setitem__(self, key: str, record: Shipment) -> None:
        self._rows[key] = self._pack(record)

    def __delitem__(self, key: str) -> None:
        del self._rows[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows
