"""Row estimates for ordering cross-department semi-joins: which condition to evaluate first.

Estimated rows = the table's row count times the condition's selectivity. Row counts come from the
sources' own statistics when they keep them (gathered at start-up: PostgreSQL's ``reltuples``,
MariaDB's ``information_schema``, SQLite's ``COUNT(*)``), else the catalog's ``estimated_rows``, else a
default. Selectivities are the classic fixed guesses of a rule-based optimiser (as in PostgreSQL's
``selfuncs.h``): equality on an identifier or key is as good as unique, other equality 1%, a range a
third, a pattern a tenth. Estimates only order the work; they never change an answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.planning.arguments import Var
from schema.catalog import Column, Table

#: Rows assumed for a table nobody gave a count for.
DEFAULT_ROWS = 10_000
#: Values assumed in an ``in`` list given as a variable.
DEFAULT_LIST_LENGTH = 10

_EQUAL = 0.01
_RANGE = 1 / 3
_PATTERN = 0.1
_NULL = 0.05

Statistics = Mapping[tuple[str, str], int]


def table_rows(statistics: Statistics, department: str, table: Table) -> int:
    """The best known row count of ``department.table``."""
    counted = statistics.get((department, table.name))
    if counted is not None:
        return max(counted, 1)
    return max(table.estimated_rows or DEFAULT_ROWS, 1)


def selectivity(where: Any, table: Table, rows: int, columns: Mapping[str, Column]) -> float:
    """Fraction of ``table``'s rows a ``where`` argument (GraphQL input, variables kept as Var) keeps."""
    where = _current(where)
    if not where:
        return 1.0
    fraction = 1.0
    for key, value in where.items():
        value = _current(value)
        if value is None:
            continue
        if key == "and":
            for part in value:
                fraction *= selectivity(part, table, rows, columns)
        elif key == "or":
            missed = 1.0
            for part in value:
                missed *= 1 - selectivity(part, table, rows, columns)
            fraction *= 1 - missed
        elif key == "not":
            fraction *= 1 - selectivity(value, table, rows, columns)
        elif key in columns:
            fraction *= _column(columns[key], value, table, rows)
    return min(max(fraction, 0.0), 1.0)


def _current(value: Any) -> Any:
    """A variable's value in this request: an estimate may use it without making it structural (it only
    orders the steps, which are correct in any order)."""
    return value.value if isinstance(value, Var) else value


def _column(column: Column, operators: Mapping[str, Any], table: Table, rows: int) -> float:
    unique = column.identifier is not None or table.primary_key == [column.name]
    equal = 1 / rows if unique else _EQUAL
    fraction = 1.0
    for operator, value in operators.items():
        value = _current(value)
        if value is None:
            continue
        if operator == "eq":
            fraction *= equal
        elif operator == "ne":
            fraction *= 1 - equal
        elif operator == "in":
            fraction *= min(1.0, equal * (len(value) if isinstance(value, list) else DEFAULT_LIST_LENGTH))
        elif operator == "like":
            fraction *= _PATTERN
        elif operator == "isNull":
            fraction *= _NULL if value else 1 - _NULL
        else:
            fraction *= _RANGE
    return fraction
