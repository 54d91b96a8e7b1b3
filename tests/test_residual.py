"""Evaluating a whole statement on fetched rows (adapters/residual.py): same meaning as on SQLite."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from adapters.base import OutputColumn, ParameterSpec, Row, SourceQuery
from adapters.canonical import BinaryText, ShowLast
from adapters.residual import ResidualQuery
from schema.catalog import Table, load_catalog
from schema.types import ColumnType
from tests.conftest import CLINIC_CATALOG
from tests.fixtures.clinic_data import PEOPLE, VISITS

CATALOG = load_catalog(CLINIC_CATALOG)
PEOPLE_TABLE = CATALOG.department("clinic").table("people")
VISITS_TABLE = CATALOG.department("clinic").table("visits")


def _query(sql: str, outputs: Sequence[tuple[str, ColumnType]], parameters: Mapping[str, ParameterSpec]) -> SourceQuery:
    select = sqlglot.parse_one(sql, read="sqlite")
    assert isinstance(select, exp.Select)
    return SourceQuery("clinic", select, tuple(OutputColumn(n, t) for n, t in outputs), dict(parameters))


def _rows(residual: ResidualQuery, source: Sequence[dict[str, Any]]) -> list[Row]:
    return [tuple(row[column.name] for column in residual.columns) for row in source]


async def test_filters_order_and_pages_over_every_type() -> None:
    query = _query(
        'SELECT "people"."person_id", "people"."born", "people"."balance", "people"."updated_at", "people"."active" '
        'FROM "people" AS "people" WHERE "people"."born" >= :p0 AND "people"."updated_at" > :p1 '
        'ORDER BY "people"."balance" DESC NULLS FIRST, "people"."person_id" ASC NULLS LAST LIMIT :p2 OFFSET :p3',
        [("person_id", ColumnType.STRING), ("born", ColumnType.DATE), ("balance", ColumnType.DECIMAL),
         ("updated_at", ColumnType.DATETIME), ("active", ColumnType.BOOLEAN)],
        {"p0": ParameterSpec(ColumnType.DATE), "p1": ParameterSpec(ColumnType.DATETIME),
         "p2": ParameterSpec(ColumnType.INTEGER), "p3": ParameterSpec(ColumnType.INTEGER)},
    )  # fmt: skip
    residual = ResidualQuery(query, PEOPLE_TABLE)
    # Only the columns the statement uses are fetched and loaded.
    assert [column.name for column in residual.columns] == ["person_id", "born", "balance", "active", "updated_at"]
    since = dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    values = {"p0": dt.date(1980, 1, 2), "p1": since, "p2": 3, "p3": 0}
    result = await residual.run(_rows(residual, PEOPLE), values)
    expected = sorted(
        (p for p in PEOPLE if p["born"] and p["born"] >= values["p0"] and p["updated_at"] and p["updated_at"] > since),
        key=lambda p: (-(p["balance"] or Decimal(0)), p["person_id"]),
    )[:3]
    assert result == [(p["person_id"], p["born"], p["balance"], p["updated_at"], p["active"]) for p in expected]
    assert all(isinstance(row[3], dt.datetime) and row[3].tzinfo is dt.UTC for row in result)


async def test_key_sets_and_per_parent_pages_by_window() -> None:
    query = _query(
        'SELECT "_fedgate_page"."person_id", "_fedgate_page"."visit_id" FROM (SELECT "visits"."person_id", '
        '"visits"."visit_id", ROW_NUMBER() OVER (PARTITION BY "visits"."person_id" ORDER BY "visits"."at" DESC, '
        '"visits"."visit_id") AS "_fedgate_rn" FROM "visits" AS "visits" WHERE "visits"."person_id" IN (:p0)) '
        'AS "_fedgate_page" WHERE "_fedgate_page"."_fedgate_rn" > :p1 AND "_fedgate_page"."_fedgate_rn" <= :p2 '
        'ORDER BY "_fedgate_page"."_fedgate_rn"',
        [("person_id", ColumnType.STRING), ("visit_id", ColumnType.INTEGER)],
        {"p0": ParameterSpec(ColumnType.STRING, is_list=True), "p1": ParameterSpec(ColumnType.INTEGER),
         "p2": ParameterSpec(ColumnType.INTEGER)},
    )  # fmt: skip
    residual = ResidualQuery(query, VISITS_TABLE)
    result = await residual.run(_rows(residual, VISITS), {"p0": ["p07", "p09", "nobody"], "p1": 0, "p2": 2})
    by_person: dict[str, list[int]] = {}
    for person, visit in result:
        by_person.setdefault(person, []).append(visit)
    latest = {
        person: [v["visit_id"] for v in sorted(VISITS, key=lambda v: v["at"], reverse=True) if v["person_id"] == person]
        for person in ("p07", "p09")
    }
    assert by_person == {person: visits[:2] for person, visits in latest.items()}


async def test_masks_run_with_fedgates_functions_and_filters_see_the_masked_value() -> None:
    def col(name: str) -> exp.Column:
        return exp.column(name, table="people", quoted=True)

    masked = exp.alias_(ShowLast(this=col("nhs_number"), count=exp.Literal.number(4)), "nhs_number", quoted=True)
    inner = (
        exp.select(masked, exp.alias_(col("person_id"), "person_id", quoted=True))
        .from_(exp.to_table('"people"').as_("people", quoted=True))
        .where(exp.EQ(this=col("active"), expression=exp.true()))
    )
    outer = (
        exp.select(col("person_id"), col("nhs_number"))
        .from_(exp.alias_(inner.subquery(), "people", table=True, quoted=True))
        .where(exp.EQ(this=BinaryText(this=col("nhs_number")), expression=exp.Placeholder(this="p0")))
        .order_by(col("person_id"))
    )
    query = SourceQuery(
        "clinic",
        outer,
        (OutputColumn("person_id", ColumnType.STRING), OutputColumn("nhs_number", ColumnType.STRING)),
        {"p0": ParameterSpec(ColumnType.STRING)},
    )
    residual = ResidualQuery(query, PEOPLE_TABLE)
    assert "FEDGATE_SHOW_LAST" not in residual.display_sql  # rendered in SQLite's own terms
    rows = _rows(residual, PEOPLE)
    assert await residual.run(rows, {"p0": "9990000001"}) == []  # the raw value is never matched
    assert await residual.run(rows, {"p0": "****0001"}) == [("p01", "****0001")]


async def test_a_repeated_primary_key_is_kept_once_first_wins() -> None:
    query = _query(
        'SELECT "people"."person_id", "people"."given_name" FROM "people" AS "people" ORDER BY "people"."person_id"',
        [("person_id", ColumnType.STRING), ("given_name", ColumnType.STRING)],
        {},
    )
    residual = ResidualQuery(query, PEOPLE_TABLE)
    assert [column.name for column in residual.columns] == ["person_id", "given_name"]
    rows = [("p02", "second"), ("p01", "first"), ("p02", "a later page")]
    assert await residual.run(rows, {}) == [("p01", "first"), ("p02", "second")]


async def test_many_rows_run_off_the_event_loop_with_the_same_answer() -> None:
    query = _query(
        'SELECT "people"."person_id" FROM "people" AS "people" WHERE "people"."visit_count" > :p0 '
        'ORDER BY "people"."person_id" LIMIT :p1',
        [("person_id", ColumnType.STRING)],
        {"p0": ParameterSpec(ColumnType.INTEGER), "p1": ParameterSpec(ColumnType.INTEGER)},
    )
    residual = ResidualQuery(query, PEOPLE_TABLE)
    rows = [(f"x{index:05d}", index % 7) for index in range(5000)]
    assert [column.name for column in residual.columns] == ["person_id", "visit_count"]
    result = await residual.run(rows, {"p0": 5, "p1": 4})
    assert result == [("x00006",), ("x00013",), ("x00020",), ("x00027",)]


class _Observed(ResidualQuery):
    """Records when and how each evaluation ended, to see a cancelled one being interrupted."""

    ended: list[tuple[float, type[BaseException] | None]] = []

    def _evaluate(self, rows: Any, values: Any, holder: list[sqlite3.Connection] | None) -> list[Row]:
        try:
            result = super()._evaluate(rows, values, holder)
        except BaseException as exc:
            self.ended.append((time.monotonic(), type(exc)))
            raise
        self.ended.append((time.monotonic(), None))
        return result


async def test_a_cancelled_evaluation_is_interrupted_on_its_thread() -> None:
    # A deliberately slow statement: a triple self-join counted for every row.
    query = _query(
        'SELECT "people"."person_id" FROM "people" AS "people" WHERE (SELECT COUNT(*) FROM "people" AS "a", '
        '"people" AS "b", "people" AS "c" WHERE "a"."score" + "b"."score" > "c"."score") > :p0',
        [("person_id", ColumnType.STRING)],
        {"p0": ParameterSpec(ColumnType.INTEGER)},
    )
    residual = _Observed(query, PEOPLE_TABLE)
    rows = [(f"x{index}", float(index)) for index in range(400)]
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(residual.run(rows, {"p0": 0}), 0.3)
    for _ in range(100):
        if residual.ended:
            break
        await asyncio.sleep(0.02)
    ended, error = residual.ended[-1]
    assert error is sqlite3.OperationalError  # "interrupted"
    assert ended - started < 2.0


def test_the_table_is_found_by_its_bare_name() -> None:
    table: Table = PEOPLE_TABLE.model_copy(update={"db_schema": "pds"})
    query = _query('SELECT "p"."person_id" FROM "pds"."people" AS "p"', [("person_id", ColumnType.STRING)], {})
    residual = ResidualQuery(query, table)
    assert '"pds"' not in residual.display_sql
