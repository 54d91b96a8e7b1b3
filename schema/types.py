"""The column types a catalog can declare, and the Python value each one is carried as inside fedgate.

Every adapter decodes its driver's values into these canonical Python types, so filters, masks, merging
and JSON output behave the same whichever database a department runs.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum


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
