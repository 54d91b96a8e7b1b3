"""Catalog validation: every problem stops start-up with the file, line, path inside it and the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.errors import ConfigError, ConfigIssue
from schema.catalog import load_catalog
from schema.configfile import load_yaml
from tests.conftest import CLINIC_CATALOG


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _data() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(CLINIC_CATALOG).data
    return data


def _issues(path: Path, **kwargs: Any) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as raised:
        load_catalog(path, **kwargs)
    return list(raised.value.issues)


def test_the_fixture_catalog_is_valid() -> None:
    catalog = load_catalog(CLINIC_CATALOG)
    assert [d.name for d in catalog.departments] == ["clinic", "council"]
    relationship = catalog.department("clinic").table("people").relationships[0]
    assert relationship.on == {"person_id": "person_id"}  # `on:` stays a string key (YAML 1.2 booleans)


def test_unknown_key_names_file_line_and_path(tmp_path: Path) -> None:
    data = _data()
    data["departments"][0]["tables"][0]["columns"][2]["colour"] = "blue"
    path = _write(tmp_path, data)
    (issue,) = _issues(path)
    assert issue.file == str(path)
    assert issue.path == "departments[clinic].tables[people].columns[given_name].colour"
    assert issue.reason == "unknown key"
    line = path.read_text().splitlines()[issue.line - 1] if issue.line else ""
    assert "colour" in line


def test_relationship_to_a_missing_column(tmp_path: Path) -> None:
    data = _data()
    data["departments"][0]["tables"][0]["relationships"][0]["on"] = {"person_id": "personid"}
    (issue,) = _issues(_write(tmp_path, data))
    assert issue.path == "departments[clinic].tables[people].relationships[visits].on.person_id"
    assert issue.reason == "column 'personid' does not exist in clinic.visits"


def test_relationship_to_a_missing_table_and_department(tmp_path: Path) -> None:
    data = _data()
    relationships = data["departments"][0]["tables"][0]["relationships"]
    relationships[0]["target"] = "clinic.visitz"
    relationships[1]["target"] = "county.cases"
    issues = _issues(_write(tmp_path, data))
    assert [issue.reason for issue in issues] == [
        "table 'visitz' does not exist in department 'clinic'",
        "department 'county' does not exist",
    ]


def test_relationship_between_columns_of_different_types(tmp_path: Path) -> None:
    data = _data()
    data["departments"][0]["tables"][0]["relationships"][0]["on"] = {"visit_count": "person_id"}
    (issue,) = _issues(_write(tmp_path, data))
    assert issue.reason == "cannot join integer column 'visit_count' to string column 'person_id'"


def test_duplicate_names_are_reported_all_at_once(tmp_path: Path) -> None:
    data = _data()
    tables = data["departments"][0]["tables"]
    tables[0]["columns"].append(dict(tables[0]["columns"][1]))
    tables.append(dict(tables[1]))
    data["departments"].append(dict(data["departments"][1]))
    reasons = {issue.reason for issue in _issues(_write(tmp_path, data))}
    assert "column 'nhs_number' is declared more than once" in reasons
    assert "table 'visits' is declared more than once" in reasons
    assert "department 'council' is declared more than once" in reasons


def test_duplicate_yaml_keys_are_errors_not_silently_merged(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    text = CLINIC_CATALOG.read_text()
    path.write_text(text.replace("    title: Test clinic\n", "    title: Test clinic\n    title: Again\n", 1))
    (issue,) = _issues(path)
    assert issue.reason == "duplicate key"
    assert issue.path == "departments.0.title"
    assert "Again" in path.read_text().splitlines()[(issue.line or 0) - 1]


def test_invalid_yaml_gives_the_line(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("version: 1\ndepartments:\n  - name: [unclosed\n")
    (issue,) = _issues(path)
    assert issue.reason.startswith("invalid YAML")
    assert issue.line is not None


def test_graphql_field_collision_after_camel_case(tmp_path: Path) -> None:
    data = _data()
    columns = data["departments"][0]["tables"][0]["columns"]
    columns.append({"name": "givenName", "type": "string"})
    reasons = [issue.reason for issue in _issues(_write(tmp_path, data))]
    assert reasons == ["two columns or relationships both become the GraphQL field 'givenName'"]


def test_primary_key_and_identifier_must_exist(tmp_path: Path) -> None:
    data = _data()
    data["departments"][0]["tables"][0]["primary_key"] = ["id"]
    data["departments"][0]["tables"][0]["columns"][1]["identifier"] = "passport"
    reasons = [issue.reason for issue in _issues(_write(tmp_path, data))]
    assert reasons == [
        "primary key column 'id' is not a column of people",
        "identifier kind 'passport' is not declared under 'identifiers'",
    ]


def test_multi_column_relationships_are_refused_clearly(tmp_path: Path) -> None:
    data = _data()
    data["departments"][0]["tables"][0]["relationships"][0]["on"] = {"person_id": "person_id", "born": "at"}
    (issue,) = _issues(_write(tmp_path, data))
    assert issue.reason == "a relationship joins on exactly one column pair in this version"


def test_secrets_come_from_the_environment_and_are_never_echoed(tmp_path: Path, monkeypatch: Any) -> None:
    data = _data()
    data["departments"][1]["source"] = {
        "kind": "postgres",
        "database": "council",
        "user": "fedgate",
        "password_env": "COUNCIL_DB_PASSWORD",
    }
    path = _write(tmp_path, data)
    monkeypatch.delenv("COUNCIL_DB_PASSWORD", raising=False)
    (issue,) = _issues(path)
    assert issue.path == "departments[council].source.password_env"
    assert issue.reason == "environment variable COUNCIL_DB_PASSWORD is not set"

    monkeypatch.setenv("COUNCIL_DB_PASSWORD", "s3cret-value")
    catalog = load_catalog(path)
    source = catalog.department("council").source
    assert source.password is not None  # type: ignore[union-attr]
    assert source.password.get_secret_value() == "s3cret-value"  # type: ignore[union-attr]
    assert "s3cret-value" not in repr(source)
    assert "s3cret-value" not in str(catalog.model_dump())


def test_a_password_in_the_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    data = _data()
    data["departments"][1]["source"] = {
        "kind": "mariadb",
        "database": "council",
        "user": "fedgate",
        "password": "hunter2-in-the-file",
    }
    (issue,) = _issues(_write(tmp_path, data))
    assert issue.reason == "unknown key"
    assert issue.path == "departments[council].source.password"
    assert "hunter2" not in str(ConfigError([issue]))


def test_yaml_one_point_one_booleans_stay_strings(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("on: yes\ncountry: NO\nflag: true\n")
    assert load_yaml(path).data == {"on": "yes", "country": "NO", "flag": True}


def test_sqlite_paths_are_relative_to_the_catalog(tmp_path: Path) -> None:
    data = _data()
    path = _write(tmp_path, data)
    catalog = load_catalog(path)
    source = catalog.department("clinic").source
    assert source.file == (tmp_path / "clinic.db").resolve()  # type: ignore[union-attr]
