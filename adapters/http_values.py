"""JSON from a department's API ⇄ fedgate's canonical values (:mod:`schema.types`).

Parsing is strict, because the rows are about to be filtered, masked and merged with other
departments' rows: a value that does not match its column's declared type fails the fetch with
:class:`~adapters.errors.SourceResponseError` rather than being guessed at. The message names the table
and the column, never the value.

========  ===============================================================================================
type      accepted JSON
========  ===============================================================================================
string    a string
integer   a number without a fractional part (``3``; ``3.0`` is refused), never ``true``/``false``
float     a number
decimal   a number (read exactly, never through a binary float) or a string holding one (``"10.50"``)
boolean   ``true`` or ``false``
date      a string ``YYYY-MM-DD``
datetime  an ISO-8601 string with date and time; ``Z`` or an offset is converted to UTC, a time without
          an offset is taken to be UTC (as for SQL sources)
========  ===============================================================================================

``null`` or an absent field is ``None`` in a nullable column and an error in a non-nullable one. The
canonical values are exactly those the SQL adapters' decoders produce (:mod:`adapters.values`):
decimals lose trailing zeros, datetimes are aware and in UTC.

The other direction, :func:`query_value`, writes a canonical value into a query string: text as is,
numbers in decimal notation, booleans as ``true``/``false``, dates ``YYYY-MM-DD``, datetimes ISO-8601
in UTC with ``Z``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog

from adapters.errors import SourceResponseError
from adapters.values import decoder
from schema.catalog import Column
from schema.types import ColumnType

log = structlog.get_logger("fedgate.adapters.http")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?$")
_NUMBER = re.compile(r"^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$")
_to_decimal = decoder(ColumnType.DECIMAL)
_to_datetime = decoder(ColumnType.DATETIME)


class WrongType(ValueError):
    """A JSON value does not fit its column's type (the message never holds the value)."""


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise WrongType("expected a string")


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise WrongType("expected an integer, not a boolean")
    if isinstance(value, int):
        return value
    raise WrongType("expected an integer")


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise WrongType("expected a number")
    number = float(value)
    if not math.isfinite(number):
        raise WrongType("the number is out of range")
    return number


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise WrongType("expected a decimal, not a boolean")
    if isinstance(value, int | Decimal):
        return _to_decimal(Decimal(value))  # type: ignore[no-any-return]
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        try:
            return _to_decimal(Decimal(value.strip()))  # type: ignore[no-any-return]
        except InvalidOperation as exc:
            raise WrongType("expected a decimal") from exc
    raise WrongType("expected a decimal number or a string holding one")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise WrongType("expected true or false")


def _date(value: Any) -> dt.date:
    if isinstance(value, str) and _DATE.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise WrongType("not a valid date") from exc
    raise WrongType("expected a date as YYYY-MM-DD")


def _datetime(value: Any) -> dt.datetime:
    if isinstance(value, str) and _DATETIME.match(value):
        try:
            return _to_datetime(value.replace("z", "Z").replace("t", "T"))  # type: ignore[no-any-return]
        except ValueError as exc:
            raise WrongType("not a valid date and time") from exc
    raise WrongType("expected an ISO-8601 date and time")


_PARSERS: Mapping[ColumnType, Callable[[Any], Any]] = {
    ColumnType.STRING: _string,
    ColumnType.INTEGER: _integer,
    ColumnType.FLOAT: _float,
    ColumnType.DECIMAL: _decimal,
    ColumnType.BOOLEAN: _boolean,
    ColumnType.DATE: _date,
    ColumnType.DATETIME: _datetime,
}

_MISSING = object()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(body: bytes) -> Any:
    """Parse a JSON body; numbers with a fraction or exponent become :class:`~decimal.Decimal` (exact).

    Raises ``ValueError`` for anything that is not strict JSON in UTF-8 (``NaN`` included).
    """
    return json.loads(body.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)


def at_path(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` in nested objects (``""``: the document); absent: a private marker."""
    if not path:
        return document
    node = document
    for step in path.split("."):
        if not isinstance(node, dict):
            return _MISSING
        node = node.get(step, _MISSING)
        if node is _MISSING:
            return _MISSING
    return node


def is_missing(value: Any) -> bool:
    return value is _MISSING


class RowParser:
    """Turns one JSON object per row into a tuple of canonical values, in ``columns`` order.

    ``fields`` maps a column to its dotted JSON path where the two differ. Fields the API sends beyond
    these columns are never read.
    """

    def __init__(self, table: str, columns: Sequence[Column], fields: Mapping[str, str]) -> None:
        self.table = table
        self._columns = tuple(
            (column.name, fields.get(column.name, column.name), _PARSERS[column.type], column.nullable)
            for column in columns
        )

    def parse(self, items: Any, *, department: str) -> list[tuple[Any, ...]]:
        """Parse a JSON array of row objects."""
        if not isinstance(items, list):
            raise SourceResponseError(department, f"department '{department}' did not return a list of {self.table}")
        return [self.parse_row(item, department=department) for item in items]

    def parse_row(self, item: Any, *, department: str) -> tuple[Any, ...]:
        if not isinstance(item, dict):
            raise SourceResponseError(
                department, f"department '{department}' returned a {self.table} row that is not an object"
            )
        values: list[Any] = []
        for name, path, parse, nullable in self._columns:
            raw = at_path(item, path)
            if raw is _MISSING or raw is None:
                if not nullable:
                    log.warning("http_source_bad_value", department=department, table=self.table, column=name)
                    state = "no" if raw is _MISSING else "a null"
                    raise SourceResponseError(
                        department, f"department '{department}' returned {state} value for {self.table}.{name}"
                    )
                values.append(None)
                continue
            try:
                values.append(parse(raw))
            except WrongType as exc:
                log.warning("http_source_bad_value", department=department, table=self.table, column=name)
                raise SourceResponseError(
                    department, f"department '{department}' returned a wrong value for {self.table}.{name}: {exc}"
                ) from None
        return tuple(values)


def query_value(value: Any) -> str:
    """A canonical value as text for a query string (or a GraphQL variable of a text-like type)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot send a {type(value).__name__} to an API")


def graphql_value(value: Any, type_name: str) -> Any:
    """A canonical value as a GraphQL variable of the named type ``type_name`` (``Int``, ``String``...).

    Built-in number and boolean types get JSON numbers and booleans; every other type (``String``,
    ``ID``, custom scalars such as ``Date`` or ``Decimal``) gets the :func:`query_value` text.
    """
    if type_name == "Int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if type_name == "Float" and isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return float(value)
    if type_name == "Boolean" and isinstance(value, bool):
        return value
    return query_value(value)
