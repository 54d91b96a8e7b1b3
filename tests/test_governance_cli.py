"""``fedgate agreements list | show | check`` on the demo's agreements and on a broken folder."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from gateway.cli import app
from schema.catalog import Catalog
from tests.support.governance import AGREEMENTS, agreement, governed_settings, write_agreements

DEMO = Path(__file__).parent.parent / "demo" / "fedgate.yaml"
runner = CliRunner()


def _json(args: list[str]) -> object:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_demo_agreements_check_passes_naming_the_expired_one() -> None:
    result = runner.invoke(app, ["agreements", "check", "--config", str(DEMO), "--json"])
    assert result.exit_code == 0, result.output
    findings = json.loads(result.output)
    assert findings == [
        {"severity": "warning", "scope": "", "table": "ISA-LCH-SCHOOL-NURSING",
         "message": "expired on 2025-08-31 23:59:59 UTC: renew it, or mark it ended"},
        *({"severity": "warning", "scope": "education.school_nursing", "table": table,
           "message": "no agreement in force covers it for the scope's purposes (direct_care): nobody can read it"}
          for table in ("education.pupils", "education.schools")),
    ]  # fmt: skip
    strict = runner.invoke(app, ["agreements", "check", "--config", str(DEMO), "--strict"])
    assert strict.exit_code == 1


def test_list_and_show() -> None:
    listed = _json(["agreements", "list", "--config", str(DEMO), "--json"])
    assert isinstance(listed, list)
    states = {entry["id"]: entry["state"] for entry in listed}
    assert states == {
        "ISA-COPI-POPULATION-HEALTH": "in force", "ISA-DWP-COUNTER-FRAUD": "in force",
        "ISA-LCC-DWP-WARM-HOMES": "in force", "ISA-LCH-SCHOOL-NURSING": "expired", "ISA-LEEDS-MASH": "in force",
        "ISA-LTHT-B86001-DIRECT-CARE": "in force", "ISA-LTHT-LCC-DISCHARGE": "in force",
    }  # fmt: skip
    shown = _json(["agreements", "show", "ISA-DWP-COUNTER-FRAUD", "--config", str(DEMO), "--json"])
    assert isinstance(shown, dict)
    assert shown["lawful_basis"]["statutory_gateway"] == [
        "Digital Economy Act 2017 s56 (fraud against the public sector)"
    ]
    assert shown["data_items"]["person_index.person_links"] == {
        "columns": ["link_id", "nino", "nhs_number", "match_score", "match_method"],
        "masks": {"nhs_number": "pseudonym"},
        "row_condition": "nino IS NOT NULL",
    }
    missing = runner.invoke(app, ["agreements", "show", "ISA-NOPE", "--config", str(DEMO)])
    assert missing.exit_code == 2
    assert "no agreement 'ISA-NOPE'" in missing.output


def test_a_broken_folder_names_each_problem_with_file_and_line(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    governed_settings(tmp_path, sqlite_clinic, 8001)
    broken = {
        **AGREEMENTS,
        "columns.yaml": agreement("ISA-COLUMNS", data_items={"clinic.people": {"columns": ["person_id", "shoe"]}}),
        "purpose.yaml": agreement("ISA-PURPOSE", purposes=["marketing"]),
    }
    folder = write_agreements(tmp_path / "agreements", broken)
    result = runner.invoke(app, ["agreements", "check", "--config", str(tmp_path / "fedgate.yaml")])
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    columns_line = (folder / "columns.yaml").read_text().splitlines().index("    - shoe") + 1
    purpose_line = (folder / "purpose.yaml").read_text().splitlines().index("- marketing") + 1
    assert "invalid configuration (2 problems)" in output
    assert (
        f"{folder / 'columns.yaml'}:{columns_line}: data_items.clinic.people.columns[1]: "
        "column 'shoe' does not exist in clinic.people"
    ) in output
    assert (
        f"{folder / 'purpose.yaml'}:{purpose_line}: purposes[0]: 'marketing' is not in the purpose vocabulary" in output
    )
    assert "Traceback" not in result.output


def test_check_reports_a_scope_no_agreement_covers_and_an_agreement_covering_nothing(
    sqlite_clinic: Catalog, tmp_path: Path
) -> None:
    governed_settings(tmp_path, sqlite_clinic, 8001)
    idle = agreement("ISA-IDLE", purposes=["statistics"])
    write_agreements(tmp_path / "agreements", {**AGREEMENTS, "idle.yaml": idle})
    findings = _json(["agreements", "check", "--config", str(tmp_path / "fedgate.yaml"), "--json"])
    assert findings == [
        {"severity": "warning", "scope": "analyst", "table": table,
         "message": "no agreement in force covers it for the scope's purposes (planning): nobody can read it"}
        for table in ("clinic.people", "clinic.visits")
    ] + [{"severity": "warning", "scope": "", "table": "ISA-IDLE",
          "message": "covers nothing any scope permitted its purposes grants: it shares nothing"}]  # fmt: skip
    assert yaml.safe_load((tmp_path / "fedgate.yaml").read_text())["agreements"]["folder"] == "agreements"
