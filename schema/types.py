"""The column types a catalog can declare, and the Python value each one is carried as inside fedgate.

Every adapter decodes its driver's values into these canonical Python types, so filters, masks, merging
and JSON output behave the same whichever database a department runs.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from enum import StrEnum
from typing import Any


class ColumnType(StrEnum):
    """A column's logical type. Text compares and sorts by code point, whatever the source's collation."""

    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"

    @property
    def python_type(self) -> type:
        return _PYTHON_TYPES[self]

    @property
    def is_orderable(self) -> bool:
        return self is not ColumnType.BOOLEAN


_PYTHON_TYPES: dict[ColumnType, type] = {
    ColumnType.STRING: str,
    ColumnType.INTEGER: int,
    ColumnType.FLOAT: float,
    ColumnType.DECIMAL: Decimal,
    ColumnType.BOOLEAN: bool,
    ColumnType.DATE: dt.date,
    ColumnType.DATETIME: dt.datetime,
}


#: Text no engine can compare the same way: NUL (PostgreSQL refuses it, SQLite and MariaDB keep it) and
#: surrogate code points (not Unicode scalar values: they have no UTF-8 encoding).
_UNSENDABLE_TEXT = re.compile("[\x00\ud800-\udfff]")
#: The widest exact decimal every engine holds: MariaDB's DECIMAL(65, 30).
DECIMAL_INTEGER_DIGITS = 35
DECIMAL_FRACTION_DIGITS = 30
_INT64 = range(-(2**63), 2**63)


def refusal(value: Any, column_type: ColumnType) -> str | None:
    """Why ``value`` (canonical for ``column_type``) cannot be compared identically on every engine, or
    ``None`` when it can. Such values are refused before any source is asked, so that the caller gets the
    same answer (a clear error) everywhere, and no source fails because of what a caller sent."""
    if value is None:
        return None
    if column_type is ColumnType.STRING:
        if isinstance(value, str) and _UNSENDABLE_TEXT.search(value):
            return "text may not contain the NUL character or unpaired surrogates"
    elif column_type is ColumnType.INTEGER:
        if isinstance(value, int) and value not in _INT64:
            return "integers must fit in 64 bits"
    elif column_type is ColumnType.FLOAT:
        if isinstance(value, float) and not math.isfinite(value):
            return "numbers must be finite"
    elif column_type is ColumnType.DECIMAL:
        return _decimal_refusal(value) if isinstance(value, Decimal) else None
    elif column_type is ColumnType.DATETIME and isinstance(value, dt.datetime) and value.tzinfo is not None:
        try:
            value.astimezone(dt.UTC)
        except OverflowError:
            return "the date-time is outside years 1 to 9999 in UTC"
    return None


def _decimal_refusal(value: Decimal) -> str | None:
    if not value.is_finite():
        return "decimals must be finite"
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    fraction = max(0, -exponent)
    integer = max(0, len(digits) + exponent)
    if integer > DECIMAL_INTEGER_DIGITS or fraction > DECIMAL_FRACTION_DIGITS:
        return (
            f"decimals may have at most {DECIMAL_INTEGER_DIGITS} digits before the point "
            f"and {DECIMAL_FRACTION_DIGITS} after it"
        )
    return None
