"""Policy files are validated at start-up: every problem with file, line, path and reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.errors import ConfigError, ConfigIssue
from gateway.policy.secrets import PolicySecrets
from gateway.policy.store import load_policy
from schema.catalog import load_catalog
from tests.conftest import CLINIC_CATALOG


def _grant(**fields: Any) -> dict[str, Any]:
    return {"table": "clinic.people", "columns": "*", **fields}


def _problems(tmp_path: Path, *grants: dict[str, Any], secret: bool = True) -> list[ConfigIssue]:
    path = tmp_path / "policy.yaml"
    path.write_text(
        yaml.safe_dump({"version": 1, "scopes": [{"name": "s", "description": "d", "grants": list(grants)}]})
    )
    with pytest.raises(ConfigError) as raised:
        load_policy(path, load_catalog(CLINIC_CATALOG), secrets=PolicySecrets(b"x"), secret_configured=secret)
    return list(raised.value.issues)


@pytest.mark.parametrize(
    ("row_filter", "reason"),
    [
        ("shoe_size = 1", "column 'shoe_size' does not exist in people"),
        ("visits.kind = 'gp'", "'visits.kind' refers to another table; use people's columns only"),
        ("score / visit_count > 1", "'score / visit_count' is not allowed in policy expressions (Div)"),
        ("CAST(postcode AS DATE) > DATE '2020-01-01'", "only DATE '...' and TIMESTAMP '...' literals may be cast"),
        ("person_id IN (SELECT person_id FROM visits)", "is not allowed in policy expressions"),
        ("given_name = :other", "the only placeholders are :principal.<attribute>"),
        ("UPPER(given_name)", "a row filter must be a condition (a comparison, IN, IS NULL, AND/OR/NOT...)"),
        ("given_name = 'a'; DROP TABLE people", "only one expression, without ';'"),
        ("given_name = = 1", "not a valid SQL expression"),
    ],
)
def test_bad_row_filters(tmp_path: Path, row_filter: str, reason: str) -> None:
    (issue,) = _problems(tmp_path, _grant(row_filter=row_filter))
    assert issue.path == "scopes[s].grants[0].row_filter"
    assert reason in issue.reason
    assert issue.line is not None


@pytest.mark.parametrize(
    ("column", "mask", "reason"),
    [
        ("born", "show_last(4)", "show_last applies to string columns, and born is date"),
        ("given_name", "round(2)", "round applies to decimal, float, integer columns, and given_name is string"),
        ("nhs_number", "show_last", "show_last needs a whole number, e.g. show_last(4)"),
        ("nhs_number", "show_last(0)", "show_last's argument must be between 1 and 100"),
        ("nhs_number", "hash(3)", "hash takes no argument"),
        ("nhs_number", "scramble", "unknown mask 'scramble'"),
        ("nhs_number", "sql(shoe_size)", "column 'shoe_size' does not exist in people"),
        ("nhs_number", "sql(:principal.org_code)", "a mask cannot depend on the principal's attributes"),
        # A mask reads only the column it masks: anything else would show that column under this one's name.
        (
            "postcode",
            "sql(nhs_number)",
            "a mask may read only the column it masks (postcode); this one reads nhs_number",
        ),
        (
            "postcode",
            "sql(COALESCE(postcode, given_name))",
            "a mask may read only the column it masks (postcode); this one reads given_name",
        ),
        (
            "born",
            "sql(CASE WHEN visit_count > 3 THEN born END)",
            "a mask may read only the column it masks (born); this one reads visit_count",
        ),
        ("postcode", "sql(visits.kind)", "'visits.kind' refers to another table"),
        ("postcode", "sql('\x00')", "a text literal is not usable: text may not contain the NUL character"),
    ],
)
def test_bad_masks(tmp_path: Path, column: str, mask: str, reason: str) -> None:
    (issue,) = _problems(tmp_path, _grant(masks={column: mask}))
    assert issue.path == f"scopes[s].grants[0].masks.{column}"
    assert reason in issue.reason


def test_a_mask_reading_an_ungranted_column_is_refused_with_where_it_is(tmp_path: Path) -> None:
    """The researcher's grant shows postcode, not the NHS number: a mask must not turn one into the other."""
    path = tmp_path / "research.yaml"
    path.write_text(
        "version: 1\n"
        "scopes:\n"
        "  - name: research\n"
        "    description: Researchers.\n"
        "    grants:\n"
        "      - table: clinic.people\n"
        "        columns: [born, postcode]\n"
        "        masks:\n"
        "          postcode: sql(nhs_number)\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_policy(path, load_catalog(CLINIC_CATALOG), secrets=PolicySecrets(b"x"), secret_configured=True)
    (issue,) = raised.value.issues
    assert (issue.file, issue.line, issue.path) == (str(path), 9, "scopes[research].grants[0].masks.postcode")
    assert issue.reason == "a mask may read only the column it masks (postcode); this one reads nhs_number"


def test_a_mask_may_use_constants_and_its_own_column(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    masks = {"postcode": "sql(COALESCE(UPPER(postcode), 'none'))", "visit_count": "sql(visit_count * 10)"}
    grant = {"table": "clinic.people", "columns": "*", "masks": masks}
    path.write_text(yaml.safe_dump({"version": 1, "scopes": [{"name": "s", "description": "d", "grants": [grant]}]}))
    policy = load_policy(path, load_catalog(CLINIC_CATALOG), secrets=PolicySecrets(b"x"), secret_configured=True)
    assert sorted(policy.compiled["s"][0].masks) == ["postcode", "visit_count"]


def test_row_filters_may_name_any_column_of_their_table_and_only_mapped_attributes(tmp_path: Path) -> None:
    """A row filter may test a column the grant does not show (it only decides which rows exist for the
    caller), but never another table, and only principal attributes a principal can actually carry."""
    hidden = _grant(columns=["person_id"], row_filter="active = TRUE AND visit_count > 0")
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "scopes": [{"name": "s", "description": "d", "grants": [hidden]}]}))
    load_policy(path, load_catalog(CLINIC_CATALOG), secrets=PolicySecrets(b"x"), secret_configured=True)
    (issue,) = _problems(
        tmp_path, _grant(row_filter="postcode = :principal.org_code OR person_id = :principal.subject")
    )
    assert issue.path == "scopes[s].grants[0].row_filter"
    assert issue.reason.startswith("':principal.org_code' is not an attribute any issuer maps")
    assert "client_id, issuer, subject" in issue.reason


def test_attributes_an_issuer_maps_may_be_used(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    grant = _grant(row_filter="postcode = :principal.org_code")
    path.write_text(yaml.safe_dump({"version": 1, "scopes": [{"name": "s", "description": "d", "grants": [grant]}]}))
    catalog = load_catalog(CLINIC_CATALOG)
    policy = load_policy(path, catalog, secrets=PolicySecrets(b"x"), secret_configured=True, attributes={"org_code"})
    assert policy.compiled["s"][0].row_filter is not None


def test_a_mask_on_a_column_not_granted(tmp_path: Path) -> None:
    (issue,) = _problems(tmp_path, _grant(columns=["person_id"], masks={"born": "year_only"}))
    assert issue.reason == "'born' is not one of the grant's columns"


def test_via_must_name_a_relationship_into_the_table(tmp_path: Path) -> None:
    issues = _problems(
        tmp_path,
        _grant(via=["clinic.people.cases"]),
        {"table": "clinic.visits", "columns": "*", "via": ["clinic.people.visitz"]},
    )
    assert [issue.reason for issue in issues] == [
        "clinic.people.cases leads to council.cases, not clinic.people",
        "clinic.people has no relationship 'visitz'",
    ]


def test_pseudonyms_need_a_configured_secret(tmp_path: Path) -> None:
    (issue,) = _problems(tmp_path, _grant(masks={"nhs_number": "pseudonym"}), secret=False)
    assert issue.reason == "pseudonyms need a stable secret: set policy.secret_env or policy.secret_file"


def test_the_secret_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret"
    first = PolicySecrets.from_file(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    second = PolicySecrets.from_file(path)
    assert first.pseudonym_key("a") == second.pseudonym_key("a")
    assert first.pseudonym_key("a") != first.pseudonym_key("b")
    assert first.row_key() not in {first.pseudonym_key("a"), first.pseudonym_key("b")}
