"""Commands for security teams: what each scope grants, and who can read a column."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table as RichTable

from gateway.cli.common import ConfigOption, JsonOption, app, console, fail, load_all_or_exit
from gateway.policy.store import Policy

scopes_app = typer.Typer(no_args_is_help=True, help="What the policy's scopes grant.")
app.add_typer(scopes_app, name="scopes")


def _policy(config: Path) -> Policy:
    _, _, policy = load_all_or_exit(config)
    if policy is None:
        raise fail("the settings name no policy file (policy.file)")
    return policy


def _print_json(value: Any) -> None:
    console.print_json(orjson.dumps(value).decode())


@scopes_app.command("list")
def list_scopes(config: ConfigOption = Path("fedgate.yaml"), as_json: JsonOption = False) -> None:
    """Every scope with its description and the tables it grants."""
    policy = _policy(config)
    rows: list[dict[str, Any]] = [
        {"scope": scope.name, "description": scope.description, "tables": [grant.table for grant in scope.grants]}
        for scope in policy.document.scopes
    ]
    if as_json:
        _print_json(rows)
        return
    table = RichTable(title="Scopes")
    for column in ("scope", "description", "tables"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["scope"], row["description"], "\n".join(row["tables"]) or "(none)")
    console.print(table)


@scopes_app.command("explain")
def explain_scope(
    scope: Annotated[str, typer.Argument(help="The scope to explain.")],
    config: ConfigOption = Path("fedgate.yaml"),
    as_json: JsonOption = False,
) -> None:
    """Exactly what one scope grants: departments, tables and columns."""
    policy = _policy(config)
    definition = policy.scopes.get(scope)
    if definition is None:
        raise fail(f"there is no scope '{scope}'", 1)
    grants: list[dict[str, Any]] = []
    for grant in definition.grants:
        department, table_name = grant.table.split(".", 1)
        _, catalog_table = policy.catalog.table(grant.table)
        readable = policy.grant_columns(grant)
        grants.append(
            {
                "department": department,
                "table": table_name,
                "columns": [column.name for column in catalog_table.columns if column.name in readable],
                "identifiers": [c.name for c in catalog_table.columns if c.identifier and c.name in readable],
            }
        )
    if as_json:
        _print_json({"scope": scope, "description": definition.description, "grants": grants})
        return
    console.print(f"[bold]{scope}[/]: {definition.description}")
    view = RichTable()
    for column in ("department", "table", "columns", "identifiers"):
        view.add_column(column, overflow="fold")
    for entry in grants:
        view.add_row(entry["department"], entry["table"], ", ".join(entry["columns"]), ", ".join(entry["identifiers"]))
    console.print(view if grants else "(grants nothing)")


@app.command()
def whocan(
    column: Annotated[str, typer.Argument(help="department.table.column")],
    config: ConfigOption = Path("fedgate.yaml"),
    as_json: JsonOption = False,
) -> None:
    """Which scopes can read a column."""
    policy = _policy(config)
    parts = column.split(".")
    if len(parts) != 3:
        raise fail("name the column as department.table.column", 1)
    department, table, name = parts
    try:
        _, catalog_table = policy.catalog.table(f"{department}.{table}")
        catalog_table.column(name)
    except KeyError:
        raise fail(f"{column} is not in the catalog", 1) from None
    scopes = policy.scopes_granting(department, table, name)
    if as_json:
        _print_json({"column": column, "scopes": scopes})
        return
    if not scopes:
        console.print(f"no scope can read {column}")
        return
    table_view = RichTable(title=f"Who can read {column}")
    table_view.add_column("scope")
    table_view.add_column("description", overflow="fold")
    for scope in scopes:
        table_view.add_row(scope, policy.scopes[scope].description)
    console.print(table_view)
