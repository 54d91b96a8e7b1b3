"""JSON rows from an API become exactly the canonical values the SQL adapters produce; wrong ones fail."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from adapters.http_values import RowParser, graphql_value, loads, query_value
from adapters.values import decoder
from gateway.errors import SourceResponseError
from schema.catalog import Column
from schema.types import ColumnType

UTC = dt.UTC


def _parse(kind: ColumnType, raw: Any, *, nullable: bool = True) -> Any:
    parser = RowParser("things", [Column(name="value", type=kind, nullable=nullable)], {})
    return parser.parse_row({"value": raw}, department="dept")[0]


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        (ColumnType.STRING, '"Zoë"', "Zoë"),
        (ColumnType.STRING, '""', ""),
        (ColumnType.INTEGER, "42", 42),
        (ColumnType.INTEGER, "-7", -7),
        (ColumnType.FLOAT, "1.5", 1.5),
        (ColumnType.FLOAT, "3", 3.0),
        (ColumnType.DECIMAL, "10.50", Decimal("10.5")),
        (ColumnType.DECIMAL, '"1234.560"', Decimal("1234.56")),
        (ColumnType.DECIMAL, "100.00", Decimal("100")),
        (ColumnType.DECIMAL, "0.1", Decimal("0.1")),
        (ColumnType.BOOLEAN, "true", True),
        (ColumnType.BOOLEAN, "false", False),
        (ColumnType.DATE, '"1960-02-29"', dt.date(1960, 2, 29)),
        (ColumnType.DATETIME, '"2026-01-01T10:00:00Z"', dt.datetime(2026, 1, 1, 10, tzinfo=UTC)),
        (ColumnType.DATETIME, '"2026-01-01T11:30:00+01:30"', dt.datetime(2026, 1, 1, 10, tzinfo=UTC)),
        (
            ColumnType.DATETIME,
            '"2025-12-31T23:59:59.250-05:00"',
            dt.datetime(2026, 1, 1, 4, 59, 59, 250000, tzinfo=UTC),
        ),
        # Without an offset a time is taken to be UTC, as for SQL sources.
        (ColumnType.DATETIME, '"2026-01-01 10:00:00"', dt.datetime(2026, 1, 1, 10, tzinfo=UTC)),
    ],
)
def test_values_become_canonical(kind: ColumnType, body: str, expected: Any) -> None:
    value = _parse(kind, loads(body.encode()))
    assert value == expected
    assert type(value) is type(expected)
    # The very value an SQL source's decoder produces for the same data.
    assert value == decoder(kind)(expected)
    if isinstance(value, dt.datetime):
        assert value.tzinfo is UTC


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (ColumnType.STRING, "12"),
        (ColumnType.INTEGER, "true"),
        (ColumnType.INTEGER, "3.0"),
        (ColumnType.INTEGER, '"3"'),
        (ColumnType.FLOAT, "false"),
        (ColumnType.FLOAT, '"1.5"'),
        (ColumnType.FLOAT, "1e400"),
        (ColumnType.DECIMAL, "true"),
        (ColumnType.DECIMAL, '"ten"'),
        (ColumnType.DECIMAL, '"NaN"'),
        (ColumnType.BOOLEAN, "1"),
        (ColumnType.BOOLEAN, '"yes"'),
        (ColumnType.DATE, '"2026-02-30"'),
        (ColumnType.DATE, '"20260101"'),
        (ColumnType.DATE, '"2026-01-01T00:00:00"'),
        (ColumnType.DATETIME, '"2026-01-01"'),
        (ColumnType.DATETIME, '"yesterday"'),
        (ColumnType.DATETIME, "1767261600"),
        (ColumnType.STRING, '{"nested": "object"}'),
    ],
)
def test_a_wrong_value_fails_naming_table_and_column_but_not_the_value(kind: ColumnType, body: str) -> None:
    with pytest.raises(SourceResponseError) as caught:
        _parse(kind, loads(body.encode()))
    error = caught.value
    assert error.code == "SOURCE_BAD_RESPONSE"
    assert error.department == "dept"
    assert "things.value" in error.message
    assert body.strip('"') not in error.message


def test_nulls_and_missing_fields() -> None:
    assert _parse(ColumnType.STRING, None) is None
    parser = RowParser(
        "people",
        [Column(name="person_id", type=ColumnType.STRING, nullable=False), Column(name="note", type=ColumnType.STRING)],
        {},
    )
    assert parser.parse_row({"person_id": "p1"}, department="d") == ("p1", None)
    with pytest.raises(SourceResponseError, match=r"no value for people\.person_id"):
        parser.parse_row({"note": "x"}, department="d")
    with pytest.raises(SourceResponseError, match=r"a null value for people\.person_id"):
        parser.parse_row({"person_id": None}, department="d")


def test_only_the_mapped_fields_are_read_and_nested_paths_work() -> None:
    columns = [
        Column(name="given_name", type=ColumnType.STRING, nullable=False),
        Column(name="born", type=ColumnType.DATE),
    ]
    parser = RowParser("people", columns, {"given_name": "name.given", "born": "dates.birth"})
    rows = parser.parse(
        [
            {"name": {"given": "Ada"}, "dates": {"birth": "1815-12-10"}, "secret": {"anything": [1, 2]}},
            {"name": {"given": "Bob"}, "dates": None},
        ],
        department="d",
    )
    assert rows == [("Ada", dt.date(1815, 12, 10)), ("Bob", None)]
    with pytest.raises(SourceResponseError, match="did not return a list"):
        parser.parse({"rows": []}, department="d")
    with pytest.raises(SourceResponseError, match="not an object"):
        parser.parse(["Ada"], department="d")


@pytest.mark.parametrize("body", [b"{", b"NaN", b'{"a": Infinity}', b"\xff\xfe", b"[1,]"])
def test_only_strict_json_is_read(body: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json's own errors, mapped by the transport
        loads(body)


def test_decimals_are_read_exactly() -> None:
    assert loads(b"[0.1, 1e2]") == [Decimal("0.1"), Decimal("1E+2")]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("a,b & c", "a,b & c"),
        (7, "7"),
        (-2.25, "-2.25"),
        (Decimal("1E+1"), "10"),
        (Decimal("10.5"), "10.5"),
        (True, "true"),
        (False, "false"),
        (dt.date(2026, 1, 2), "2026-01-02"),
        (dt.datetime(2026, 1, 1, 10, tzinfo=UTC), "2026-01-01T10:00:00Z"),
        (dt.datetime(2026, 1, 1, 11, tzinfo=dt.timezone(dt.timedelta(hours=1))), "2026-01-01T10:00:00Z"),
        (dt.datetime(2026, 1, 1, 10, 0, 0, 5), "2026-01-01T10:00:00.000005Z"),
    ],
)
def test_query_string_encoding(value: Any, text: str) -> None:
    assert query_value(value) == text


def test_graphql_variables_follow_the_declared_type() -> None:
    assert graphql_value(3, "Int") == 3
    assert graphql_value(Decimal("2.5"), "Float") == 2.5
    assert graphql_value(True, "Boolean") is True
    assert graphql_value(Decimal("2.50"), "Decimal") == "2.50"
    assert graphql_value(dt.date(2026, 1, 2), "Date") == "2026-01-02"
    assert graphql_value(dt.datetime(2026, 1, 1, tzinfo=UTC), "DateTime") == "2026-01-01T00:00:00Z"
    assert graphql_value(12, "ID") == "12"
