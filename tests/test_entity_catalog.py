"""The catalog's entities section is checked at start-up like the rest: file, line, path and reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.errors import ConfigError
from schema.catalog import load_catalog
from schema.configfile import load_yaml
from tests.support.person_federation import PERSON_CATALOG


def _issues(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> list[tuple[str, str]]:
    data: dict[str, Any] = load_yaml(PERSON_CATALOG).data
    change(data["entities"][0])
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_catalog(path, resolve_secrets=False)
    for issue in raised.value.issues:
        assert issue.line is not None and issue.file == str(path)
    return [(issue.path, issue.reason) for issue in raised.value.issues]


def _member(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda entity: next(m for m in entity["members"] if m["name"] == name)


CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    (
        "unknown link table",
        lambda e: e["link"].update(table="linkage.nothing"),
        "entities[person].link.table",
        "table 'linkage.nothing' does not exist",
    ),
    (
        "link key of another identifier",
        lambda e: e["link"].update(key="nino"),
        "entities[person].link.key",
        "column 'nino' does not hold identifier kind 'nhs_number'",
    ),
    (
        "text score",
        lambda e: e["link"].update(score="method"),
        "entities[person].link.score",
        "the score column must be a float or decimal from 0 to 1, not string",
    ),
    (
        "undeclared identifier",
        lambda e: _member("claims")(e).update(by="passport"),
        "entities[person].members[claims].by",
        "identifier kind 'passport' is not declared under 'identifiers'",
    ),
    (
        "member column missing",
        lambda e: _member("claims")(e).update(column="nope"),
        "entities[person].members[claims].column",
        "'nope' is not a column of dwp.claims",
    ),
    (
        "no column holds the identifier",
        lambda e: _member("claims")(e).update(by="council_person_id"),
        "entities[person].members[claims].column",
        "dwp.claims needs exactly one column holding 'council_person_id'; set 'column'",
    ),
    (
        "join column of another type",
        lambda e: _member("claims")(e).update(column="weekly_amount"),
        "entities[person].members[claims].column",
        "cannot join decimal column 'weekly_amount' to string column 'nino' of linkage.links",
    ),
    (
        "merged from a list",
        lambda e: e["fields"][0].update(sources=["claims.benefit"]),
        "entities[person].fields[given_name].sources",
        "member 'claims' is a list; merged fields come from 'one' members",
    ),
    (
        "merged sources of different types",
        lambda e: e["fields"][0].update(sources=["patient.given_name", "patient.date_of_birth"]),
        "entities[person].fields[given_name].sources",
        "the sources of 'given_name' have different types: date, string",
    ),
    (
        "a member named like a merged field",
        lambda e: _member("claims")(e).update(name="given_name"),
        "entities[person]",
        "field 'givenName' of Person is generated twice",
    ),
    (
        "root field clash with a department",
        lambda e: e.update(list_field="health"),
        "entities[person]",
        "root field 'health' is generated twice; rename the entity's fields",
    ),
]


@pytest.mark.parametrize(("change", "path", "reason"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_entity_problems_stop_start_up(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], path: str, reason: str
) -> None:
    assert (path, reason) in _issues(tmp_path, change)


def test_unknown_keys_in_an_entity_are_refused(tmp_path: Path) -> None:
    issues = _issues(tmp_path, lambda e: e["link"].update(confidence=0.5))
    assert issues == [("entities[person].link.confidence", "unknown key")]
