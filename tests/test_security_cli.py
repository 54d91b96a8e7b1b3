"""The security team's commands: scopes list / explain, whocan, check (and its exit codes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from demo.run import ensure_audit_key
from gateway.cli import app
from gateway.settings import load_settings
from schema.catalog import Catalog
from tests.test_auth_http import write_settings

runner = CliRunner()


@pytest.fixture
def config(sqlite_clinic: Catalog, tmp_path: Path) -> Path:
    write_settings(tmp_path, sqlite_clinic, 8001)
    return tmp_path / "fedgate.yaml"


def _json(args: list[str]) -> object:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_scopes_list(config: Path) -> None:
    listed = _json(["scopes", "list", "--config", str(config)])
    assert [(entry["scope"], entry["tables"]) for entry in listed] == [  # type: ignore[index, union-attr]
        ("clinic.full", ["clinic.people", "clinic.visits", "council.cases"]),
        ("clinic.reception", ["clinic.people", "clinic.visits", "council.cases"]),
        ("clinic.research", ["clinic.people"]),
        ("clinic.nothing", []),
    ]
    assert listed[3]["description"] == "A scope that grants nothing."  # type: ignore[index]


def test_scopes_explain(config: Path) -> None:
    explained = _json(["scopes", "explain", "clinic.reception", "--config", str(config)])
    assert explained["grants"][0] == {  # type: ignore[index]
        "department": "clinic",
        "table": "people",
        "columns": ["person_id", "given_name", "family_name"],
        "identifiers": [],
    }
    full = _json(["scopes", "explain", "clinic.full", "--config", str(config)])
    assert full["grants"][0]["identifiers"] == ["nhs_number"]  # type: ignore[index]
    table = runner.invoke(app, ["scopes", "explain", "clinic.reception", "--config", str(config)])
    assert "given_name" in table.output
    missing = runner.invoke(app, ["scopes", "explain", "no.such", "--config", str(config)])
    assert missing.exit_code == 2


def _readers(answer: object) -> dict[str, list[tuple[str, str, str, list[str]]]]:
    assert isinstance(answer, dict)
    return {
        entry["column"]: [(r["scope"], r["rows"], r["shown_as"], r["via"]) for r in entry["readers"]]
        for entry in answer["columns"]
    }


def test_whocan(config: Path) -> None:
    full = _json(["whocan", "clinic.people.nhs_number", "--config", str(config)])
    assert _readers(full) == {"clinic.people.nhs_number": [("clinic.full", "all rows", "stored value", [])]}
    given = _readers(_json(["whocan", "clinic.people.given_name", "-c", str(config)]))["clinic.people.given_name"]
    assert [scope for scope, *_ in given] == ["clinic.full", "clinic.reception"]
    for unknown in ("clinic.people.shoe_size", "shoe_size", "clinic.people"):
        result = runner.invoke(app, ["whocan", unknown, "--config", str(config)])
        assert result.exit_code == 2
        assert unknown in result.output


DEMO = Path(__file__).parent.parent / "demo" / "fedgate.yaml"


def test_whocan_a_bare_identifier_answers_for_every_table_and_says_how(monkeypatch: pytest.MonkeyPatch) -> None:
    """`whocan nhs_number` on the demo: every table holding one, with row filters, masks and `via`."""
    monkeypatch.setenv("FEDGATE_DEMO_HOUSING_TOKEN", "unused")
    readers = _readers(_json(["whocan", "nhs_number", "--config", str(DEMO)]))
    assert set(readers) >= {
        "health.patients.nhs_number",
        "social_care.clients.nhs_number",
        "person_index.person_links.nhs_number",
    }
    assert ("dwp.investigation", "where NOT nino IS NULL", "pseudonym", []) in readers[
        "person_index.person_links.nhs_number"
    ]
    assert ("safeguarding.mash", "all rows", "stored value", []) in readers["person_index.person_links.nhs_number"]
    patients = readers["health.patients.nhs_number"]
    assert ("health.gp.read", "where gp_practice_code = :principal.org_code", "stored value", []) in patients
    assert ("social_care.casework", "all rows", "stored value", ["social_care.clients.patient"]) in patients
    table = runner.invoke(app, ["whocan", "nhs_number", "--config", str(DEMO)], env={"COLUMNS": "250"})
    assert table.exit_code == 0
    assert "FEDGATE_BINARY_TEXT" not in table.output and "pseudonym" in table.output


def test_check_reports_findings_and_gates_on_errors(config: Path) -> None:
    result = runner.invoke(app, ["check", "--config", str(config), "--json"])
    findings = json.loads(result.output)
    assert {
        "severity": "error",
        "scope": "clinic.nothing",
        "message": "the scope grants nothing",
        "table": "",
    } in findings
    identifiers = [f for f in findings if f["severity"] == "warning"]
    assert [(f["scope"], f["table"]) for f in identifiers] == [
        ("clinic.full", "clinic.people"),
        ("clinic.full", "council.cases"),
    ]
    assert result.exit_code == 1


def test_check_passes_a_clean_policy_and_strict_fails_warnings(config: Path) -> None:
    policy = yaml.safe_load((config.parent / "policy.yaml").read_text())
    policy["scopes"] = [scope for scope in policy["scopes"] if scope["name"] not in {"clinic.nothing", "clinic.full"}]
    (config.parent / "policy.yaml").write_text(yaml.safe_dump(policy))
    assert runner.invoke(app, ["check", "--config", str(config)]).exit_code == 0
    policy["scopes"].append(dict(policy["scopes"][0], name="clinic.reception.copy"))
    (config.parent / "policy.yaml").write_text(yaml.safe_dump(policy))
    lenient = runner.invoke(app, ["check", "--config", str(config), "--json"])
    assert lenient.exit_code == 0
    duplicate = {
        "severity": "warning",
        "scope": "clinic.reception.copy",
        "message": "grants exactly what 'clinic.reception' grants",
        "table": "",
    }
    assert duplicate in json.loads(lenient.output)
    assert runner.invoke(app, ["check", "--config", str(config), "--strict"]).exit_code == 1


def test_check_stops_on_an_invalid_policy_with_file_line_and_path(config: Path) -> None:
    text = (config.parent / "policy.yaml").read_text().replace("given_name, family_name]", "given_name, shoe_size]")
    (config.parent / "policy.yaml").write_text(text)
    result = runner.invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 2
    assert "policy.yaml:" in result.output
    assert "scopes[clinic.reception].grants[0].columns[2]" in result.output
    assert "column 'shoe_size' does not exist in clinic.people" in result.output


def test_check_refuses_a_mask_reading_another_column_and_an_unmapped_attribute(config: Path) -> None:
    """What `check` passes must start, and what start-up refuses `check` refuses: the same loader."""
    policy = yaml.safe_load((config.parent / "policy.yaml").read_text())
    research = next(scope for scope in policy["scopes"] if scope["name"] == "clinic.research")
    research["grants"][0]["masks"] = {research["grants"][0]["columns"][0]: "sql(nhs_number)"}
    research["grants"][0]["row_filter"] = "postcode = :principal.org_code"
    (config.parent / "policy.yaml").write_text(yaml.safe_dump(policy))
    result = runner.invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 2
    assert "scopes[clinic.research].grants[0].masks." in result.output
    assert "a mask may read only the column it masks" in result.output
    assert "scopes[clinic.research].grants[0].row_filter" in result.output
    assert "':principal.org_code' is not an attribute any issuer maps" in result.output
    settings = yaml.safe_load(config.read_text())
    settings["auth"]["issuers"][0]["claims"] = {"attributes": {"org_code": "organisation"}}
    settings["policy"]["pseudonym_recipient"] = "tenant"
    config.write_text(yaml.safe_dump(settings))
    result = runner.invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 2
    assert "pseudonym_recipient 'tenant' is not an attribute any issuer maps" in result.output
    del settings["policy"]["pseudonym_recipient"]
    config.write_text(yaml.safe_dump(settings))
    result = runner.invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 2
    assert "a mask may read only the column it masks" in result.output
    assert "row_filter" not in result.output  # org_code is mapped now


def test_the_demo_configuration_is_valid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The demo's configuration passes ``fedgate check`` once what ``fedgate demo`` provides is there: the
    housing API's token in the environment and the audit's signing key (generated by the demo alone)."""
    source = Path(__file__).parent.parent / "demo"
    for name in ("catalog.yaml", "policy.yaml", "fedgate.yaml"):
        shutil.copy(source / name, tmp_path / name)
    shutil.copytree(source / "agreements", tmp_path / "agreements")
    demo = tmp_path / "fedgate.yaml"
    monkeypatch.delenv("FEDGATE_DEMO_HOUSING_TOKEN", raising=False)
    unset = runner.invoke(app, ["check", "--config", str(demo)])
    assert unset.exit_code == 2  # serve would refuse: the housing API's token is read at start-up
    assert "credential.token_env: environment variable FEDGATE_DEMO_HOUSING_TOKEN is not set" in unset.output
    monkeypatch.setenv("FEDGATE_DEMO_HOUSING_TOKEN", "a-housing-token")
    keyless = runner.invoke(app, ["check", "--config", str(demo)])
    assert keyless.exit_code == 2  # nor does serve generate a signing key: only the demo does
    assert "fedgate.yaml:28: audit.signing_key_file: cannot read " in keyless.output
    assert "audit-signing-key.pem: No such file or directory" in keyless.output
    assert ensure_audit_key(load_settings(demo)) == tmp_path / "data" / "audit-signing-key.pem"
    result = runner.invoke(app, ["check", "--config", str(demo), "--json"])
    assert result.exit_code == 0, result.output
    findings = json.loads(result.output)
    assert all(finding["severity"] == "warning" for finding in findings)
