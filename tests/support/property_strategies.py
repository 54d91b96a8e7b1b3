"""Hypothesis strategies for the policy property test: rows, grants (filters and masks) and conditions.

A row filter is drawn as a structure and rendered twice: as policy SQL for fedgate, and as a Python
predicate with SQL's three-valued logic for the reference.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

Row = dict[str, Any]
ITEM_COLUMNS = ["id", "name", "code", "amount", "score", "price", "day", "at", "flag"]
NOTE_COLUMNS = ["note_id", "item_id", "body", "weight"]
COLUMN_TYPES = {"id": "string", "name": "string", "code": "string", "amount": "integer", "score": "float",
                "price": "decimal", "day": "date", "at": "datetime", "flag": "boolean", "note_id": "integer",
                "item_id": "string", "body": "string", "weight": "integer"}  # fmt: skip
TEXT = ["alice", "Alice", "bob", "Zoë", "é", "50%", "a_b", "", "x\\y", "o'k", "LS6 2AB", "wf11aa"]
VALUES: dict[str, list[Any]] = {
    "string": TEXT,
    "integer": list(range(-5, 6)),
    "float": [-2.5, 0.0, 0.5, 1.25, 2.675, 10.75],
    "decimal": [Decimal(v) for v in ("0.00", "1.50", "2.25", "-3.10", "10.05", "12.35")],
    "date": [dt.date(2020, 1, 1), dt.date(2020, 6, 15), dt.date(2021, 2, 28), dt.date(2019, 12, 31)],
    "datetime": [dt.datetime(2020, 1, 1, 10, 0, tzinfo=dt.UTC), dt.datetime(2020, 6, 30, 23, 59, 59, tzinfo=dt.UTC),
                 dt.datetime(2021, 12, 31, 0, 0, tzinfo=dt.UTC)],
    "boolean": [True, False],
}  # fmt: skip
MASKS: dict[str, list[str]] = {
    "string": ["show_last(2)", "show_first(1)", "hash", "pseudonym", "redact", "null", "postcode_district"],
    "integer": ["round(-1)", "round(0)", "null"],
    "float": ["round(0)", "round(1)", "null"],
    "decimal": ["round(0)", "round(1)", "null"],
    "date": ["year_only", "month_only", "null"],
    "datetime": ["year_only", "month_only", "null"],
    "boolean": ["null"],
}


def domain(kind: str) -> st.SearchStrategy[Any]:
    return st.sampled_from(VALUES[kind])


@st.composite
def rows_strategy(draw: st.DrawFn) -> dict[str, list[Row]]:
    count = draw(st.integers(0, 14))
    items = []
    for index in range(count):
        row: Row = {"id": f"i{index:02d}"}
        for column in ITEM_COLUMNS[1:]:
            row[column] = draw(st.none() | domain(COLUMN_TYPES[column]))
        items.append(row)
    ids = [row["id"] for row in items] + ["orphan"]
    notes = [
        {"note_id": index, "item_id": draw(st.sampled_from(ids)), "body": draw(st.none() | domain("string")),
         "weight": draw(st.none() | domain("integer"))}
        for index in range(draw(st.integers(0, 20)))
    ]  # fmt: skip
    return {"shop.items": items, "shop.notes": notes}


def _sql(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    return str(value)


def _and(values: list[bool | None]) -> bool | None:
    return False if False in values else None if None in values else True


def _or(values: list[bool | None]) -> bool | None:
    return True if True in values else None if None in values else False


@dataclass
class Condition:
    """A row filter as policy SQL and as a three-valued Python predicate."""

    sql: str
    evaluate: Callable[[Row, Mapping[str, Any]], bool | None]
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def holds(self, row: Row) -> bool:
        return self.evaluate(row, self.attributes) is True


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "<>": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}  # fmt: skip


@st.composite
def condition_strategy(draw: st.DrawFn, columns: list[str], depth: int = 0) -> Condition:
    shape = draw(st.integers(0, 9 if depth < 2 else 5))
    column = draw(st.sampled_from([c for c in columns if COLUMN_TYPES[c] != "datetime"]))
    kind = COLUMN_TYPES[column]
    if shape <= 2:
        operator = draw(st.sampled_from(["=", "<>"] if kind == "boolean" else list(_COMPARE)))
        literal = draw(domain(kind))
        compare = _COMPARE[operator]
        return Condition(
            f"{column} {operator} {_sql(literal)}",
            lambda row, _: None if row[column] is None else compare(row[column], literal),
        )
    if shape == 3:
        negate = draw(st.booleans())
        return Condition(f"{column} IS {'NOT ' if negate else ''}NULL", lambda row, _: (row[column] is None) != negate)
    if shape == 4:
        options = draw(st.lists(domain(kind), min_size=1, max_size=3))
        return Condition(
            f"{column} IN ({', '.join(_sql(o) for o in options)})",
            lambda row, _: None if row[column] is None else row[column] in options,
        )
    if shape == 5 and "code" in columns:
        return Condition(
            "code = :principal.org",
            lambda row, attributes: None if row["code"] is None or attributes.get("org") is None
            else row["code"] == attributes["org"],
        )  # fmt: skip
    parts = [draw(condition_strategy(columns, depth + 1)) for _ in range(2)]
    if shape in (6, 7):
        return Condition(f"({parts[0].sql}) AND ({parts[1].sql})",
                         lambda row, a: _and([parts[0].evaluate(row, a), parts[1].evaluate(row, a)]))  # fmt: skip
    if shape == 8:
        return Condition(f"({parts[0].sql}) OR ({parts[1].sql})",
                         lambda row, a: _or([parts[0].evaluate(row, a), parts[1].evaluate(row, a)]))  # fmt: skip
    inner = parts[0]
    return Condition(f"NOT ({inner.sql})", lambda row, a: None if (v := inner.evaluate(row, a)) is None else not v)


@st.composite
def grant_strategy(draw: st.DrawFn, table: str, columns: list[str]) -> tuple[dict[str, Any], Condition | None]:
    everything = draw(st.integers(0, 3)) == 0
    granted = columns if everything else draw(st.lists(st.sampled_from(columns), min_size=1, unique=True))
    grant: dict[str, Any] = {"table": table, "columns": "*" if everything else granted}
    condition = draw(st.none() | condition_strategy(columns))
    if condition is not None:
        grant["row_filter"] = condition.sql
    masked = draw(st.lists(st.sampled_from(granted), max_size=3, unique=True))
    if masked:
        grant["masks"] = {column: draw(st.sampled_from(MASKS[COLUMN_TYPES[column]])) for column in masked}
    return grant, condition


@st.composite
def grants_strategy(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[Condition | None]]:
    drawn = [draw(grant_strategy("shop.items", ITEM_COLUMNS)) for _ in range(draw(st.integers(1, 3)))]
    return [grant for grant, _ in drawn], [condition for _, condition in drawn]


@st.composite
def note_grant_strategy(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[Condition | None]]:
    if draw(st.integers(0, 3)) == 0:
        return [], []
    grant, condition = draw(grant_strategy("shop.notes", NOTE_COLUMNS))
    if draw(st.booleans()):
        grant["via"] = ["shop.items.notes"]
    return [grant], [condition]


@dataclass
class Mistake:
    """One careless edit to a grant: refused at ``refused`` (a key path inside the grant), or, when
    ``refused`` is None, a row filter (``condition``) over columns the grant does not show, which is allowed."""

    refused: str | None
    condition: Condition | None = None


@st.composite
def careless_grant(draw: st.DrawFn, grant: dict[str, Any]) -> Mistake:
    """Edit ``grant`` (an items grant) as a careless author might; say where the edit must be refused."""
    granted = ITEM_COLUMNS if grant["columns"] == "*" else list(grant["columns"])
    hidden = [column for column in ITEM_COLUMNS if column not in granted and COLUMN_TYPES[column] != "datetime"]
    kinds = ["mask_other_column", "mask_other_table", "mask_attribute", "filter_other_table", "filter_unmapped"]
    kind = draw(st.sampled_from(kinds + (["filter_hidden"] if hidden else [])))
    if kind == "filter_hidden":
        return Mistake(None, draw(condition_strategy(hidden)))
    if kind.startswith("mask"):
        target = draw(st.sampled_from(granted))
        other = draw(st.sampled_from([column for column in ITEM_COLUMNS if column != target]))
        expression = {"mask_other_column": f"COALESCE({target}, {other})" if draw(st.booleans()) else other,
                      "mask_other_table": "notes.body", "mask_attribute": ":principal.org"}[kind]  # fmt: skip
        grant.setdefault("masks", {})[target] = f"sql({expression})"
        return Mistake(f"masks.{target}")
    grant["row_filter"] = "notes.weight > 1" if kind == "filter_other_table" else "code = :principal.tenant"
    return Mistake("row_filter")
