"""Text is compared, matched, sorted and joined by code point on every engine, spaces and case included.

MariaDB's usual collations pad with spaces (``'Bentley ' = 'Bentley'``) and ignore case; PostgreSQL and
SQLite do neither. fedgate must give SQLite's and PostgreSQL's answer everywhere: for equality, ``in``,
ranges, ``like``, ordering, look-ups by a text key and relationships joined on text. Every expected
answer is computed here in plain Python from the rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from demo.load import write_sqlite
from gateway.service import Gateway
from schema.catalog import Catalog, load_catalog
from tests.conftest import (
    MARIADB,
    PG,
    fill_mariadb,
    fill_postgres,
    run,
    scratch_mariadb,
    scratch_postgres,
    started_gateway,
    write_catalog,
)

CATALOG = Path(__file__).parent / "fixtures" / "text_catalog.yaml"
SURNAMES = ["Bentley", "Bentley ", " Bentley", "bentley", "BENTLEY", "Bentley\t", "Ben tley", "Bentley  "]
FAMILIES = [{"family_id": index, "surname": surname} for index, surname in enumerate(SURNAMES[:7], start=1)]
MEMBERS = [
    {"member_id": 10 + index, "surname": surname}
    for index, surname in enumerate(["Bentley", "Bentley ", " Bentley", "bentley", "Bentley\t", "Bentley  "])
]
CODES = [{"code": "AB1", "meaning": "upper"}, {"code": "ab2", "meaning": "lower"}, {"code": " c3", "meaning": "lead"}]
ROWS = {"registry.families": FAMILIES, "registry.members": MEMBERS, "registry.codes": CODES}
ENGINES = ("sqlite", "postgres", "mariadb")


@pytest.fixture(scope="module")
async def gateways(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Gateway]]:
    template = load_catalog(CATALOG)
    directory = tmp_path_factory.mktemp("text")
    async with scratch_postgres() as pg_name, scratch_mariadb() as maria_name:
        await fill_postgres(pg_name, template, ROWS)
        await fill_mariadb(maria_name, template, ROWS)
        sqlite_path = directory / "registry.db"
        write_sqlite(sqlite_path, template, template.department("registry"), ROWS)
        sources: dict[str, dict[str, Any]] = {
            "sqlite": {"kind": "sqlite", "path": str(sqlite_path)},
            "postgres": {"kind": "postgres", **PG, "database": pg_name},
            "mariadb": {"kind": "mariadb", **MARIADB, "database": maria_name},
        }
        catalogs: dict[str, Catalog] = {
            engine: load_catalog(write_catalog(CATALOG, directory, {"registry": source}))
            for engine, source in sources.items()
        }
        started = {engine: await started_gateway(catalog) for engine, catalog in catalogs.items()}
        try:
            yield started
        finally:
            for gateway in started.values():
                await gateway.stop()


def _families(keep: Callable[[str], bool]) -> list[dict[str, Any]]:
    return [{"familyId": row["family_id"]} for row in FAMILIES if keep(row["surname"])]


def _by_surname(*, reverse: bool = False) -> list[dict[str, Any]]:
    return [{"familyId": row["family_id"]} for row in sorted(FAMILIES, key=lambda r: r["surname"], reverse=reverse)]


CASES: list[tuple[str, str, Any]] = [
    ("equality keeps a trailing space", '{ registry { families(where: {surname: {eq: "Bentley "}}) { familyId } } }',
     {"registry": {"families": _families(lambda s: s == "Bentley ")}}),
    ("equality without the space", '{ registry { families(where: {surname: {eq: "Bentley"}}) { familyId } } }',
     {"registry": {"families": _families(lambda s: s == "Bentley")}}),
    ("equality keeps a leading space", '{ registry { families(where: {surname: {eq: " Bentley"}}) { familyId } } }',
     {"registry": {"families": _families(lambda s: s == " Bentley")}}),
    ("equality is case-sensitive", '{ registry { families(where: {surname: {eq: "bentley"}}) { familyId } } }',
     {"registry": {"families": _families(lambda s: s == "bentley")}}),
    ("ne keeps the padded and the differently cased",
     '{ registry { families(where: {surname: {ne: "Bentley"}}) { familyId } } }',
     {"registry": {"families": _families(lambda s: s != "Bentley")}}),
    ("in is exact", '{ registry { families(where: {surname: {in: ["Bentley", "BENTLEY "]}}) { familyId } } }',
     {"registry": {"families": _families(lambda s: s in {"Bentley", "BENTLEY "})}}),
    ("ranges by code point: a prefix sorts first, a tab before a space",
     '{ registry { families(where: {surname: {lt: "Bentley ", gte: "Bentley"}}) { familyId } } }',
     {"registry": {"families": _families(lambda s: "Bentley" <= s < "Bentley ")}}),
    ("like keeps trailing characters", '{ registry { families(where: {surname: {like: "Bentley_"}}) { familyId } } }',
     {"registry": {"families": _families(lambda s: len(s) == 8 and s.startswith("Bentley"))}}),
    ("ordering by code point, spaces and case included",
     "{ registry { families(orderBy: [{surname: ASC}]) { familyId } } }",
     {"registry": {"families": _by_surname()}}),
    ("ordering descending", "{ registry { families(orderBy: [{surname: DESC}]) { familyId } } }",
     {"registry": {"families": _by_surname(reverse=True)}}),
    ("a many relationship joins on the exact text",
     "{ registry { families(orderBy: [{familyId: ASC}]) { familyId "
     "members(orderBy: [{memberId: ASC}]) { memberId } } } }",
     {"registry": {"families": [
         {"familyId": family["family_id"],
          "members": [{"memberId": m["member_id"]} for m in MEMBERS if m["surname"] == family["surname"]]}
         for family in FAMILIES]}}),
    ("a one relationship joins on the exact text",
     "{ registry { members(orderBy: [{memberId: ASC}]) { memberId family { familyId } } } }",
     {"registry": {"members": [
         {"memberId": m["member_id"],
          "family": next(({"familyId": f["family_id"]} for f in FAMILIES if f["surname"] == m["surname"]), None)}
         for m in MEMBERS]}}),
    ("a look-up by a text key is exact",
     '{ registry { a: code(code: "AB1") { meaning } b: code(code: "ab1") { meaning } c: code(code: "AB1 ") { meaning } '
     'd: code(code: "c3") { meaning } e: code(code: " c3") { meaning } } }',
     {"registry": {"a": {"meaning": "upper"}, "b": None, "c": None, "d": None, "e": {"meaning": "lead"}}}),
]  # fmt: skip


@pytest.mark.parametrize(("title", "query", "expected"), CASES, ids=[case[0] for case in CASES])
@pytest.mark.parametrize("engine", ENGINES)
async def test_text_is_compared_by_code_point(
    gateways: dict[str, Gateway], engine: str, title: str, query: str, expected: Any
) -> None:
    response = await run(gateways[engine], query)
    assert response.errors == [], response.errors
    assert response.data == expected
