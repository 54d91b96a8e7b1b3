"""Converting between drivers' values and fedgate's canonical Python values (see :mod:`schema.types`).

Decoding is tolerant of every representation a driver may return for a declared type (SQLite keeps
dates as text, MariaDB booleans as integers, PostgreSQL ``timestamp`` without a time zone as naive
datetimes) and always produces the same canonical value, so answers are identical across sources.
Naive datetimes are taken to be UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from schema.types import ColumnType

Decoder = Callable[[Any], Any]


def _decode_string(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8")
    return value if isinstance(value, str) else str(value)


def _decode_integer(value: Any) -> int:
    return value if type(value) is int else int(value)


def _decode_float(value: Any) -> float:
    return value if type(value) is float else float(value)


def _decode_decimal(value: Any) -> Decimal:
    """Trailing zeros are dropped (``12.50`` → ``12.5``): sources store decimals at different scales."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    normal = number.normalize()
    exponent = normal.as_tuple().exponent
    return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal


def _decode_boolean(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "t", "true", "y", "yes"}
    return bool(value)


def _decode_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(_decode_string(value)[:10])


def _decode_datetime(value: Any) -> dt.datetime:
    moment: dt.datetime
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    else:
        moment = dt.datetime.fromisoformat(_decode_string(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


_DECODERS: dict[ColumnType, Decoder] = {
    ColumnType.STRING: _decode_string,
    ColumnType.INTEGER: _decode_integer,
    ColumnType.FLOAT: _decode_float,
    ColumnType.DECIMAL: _decode_decimal,
    ColumnType.BOOLEAN: _decode_boolean,
    ColumnType.DATE: _decode_date,
    ColumnType.DATETIME: _decode_datetime,
}


def decoder(column_type: ColumnType) -> Decoder:
    """The function turning a driver's value of ``column_type`` into the canonical value (``None`` stays)."""
    decode = _DECODERS[column_type]

    def decode_nullable(value: Any) -> Any:
        return None if value is None else decode(value)

    return decode_nullable


_NONE = type(None)
#: Driver value types that are already canonical for a column type (decimals are normalised and
#: datetimes moved to UTC, so they always go through their decoder).
_CANONICAL: dict[ColumnType, frozenset[type]] = {
    ColumnType.STRING: frozenset({str, _NONE}),
    ColumnType.INTEGER: frozenset({int, _NONE}),
    ColumnType.FLOAT: frozenset({float, _NONE}),
    ColumnType.BOOLEAN: frozenset({bool, _NONE}),
    ColumnType.DATE: frozenset({dt.date, _NONE}),
    ColumnType.DECIMAL: frozenset({_NONE}),
    ColumnType.DATETIME: frozenset({_NONE}),
}


class RowDecoder:
    """Decodes a result's rows column by column: a column whose values all already have a canonical type
    (text arriving as ``str``, say) is passed through without a call per value."""

    def __init__(self, column_types: Sequence[ColumnType]) -> None:
        self.decoders = tuple(decoder(column_type) for column_type in column_types)
        self.canonical = tuple(_CANONICAL[column_type] for column_type in column_types)

    def __call__(self, rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Canonical rows; raises ``ValueError``, ``TypeError`` or ``ArithmeticError`` for a value that does
        not fit its column's type, and ``ValueError`` for a row of the wrong width."""
        columns = list(zip(*rows, strict=True))
        if not columns:
            return []
        if len(columns) != len(self.decoders):
            raise ValueError(f"rows have {len(columns)} columns, not {len(self.decoders)}")
        for index, (decode, canonical) in enumerate(zip(self.decoders, self.canonical, strict=True)):
            if not set(map(type, columns[index])) <= canonical:
                columns[index] = tuple(map(decode, columns[index]))
        return list(zip(*columns, strict=True))


def utc_naive(value: dt.datetime) -> dt.datetime:
    """An aware datetime as a naive one in UTC (for sources whose datetime type has no time zone)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)
