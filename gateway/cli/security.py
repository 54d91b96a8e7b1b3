"""Commands for security teams: what each scope grants, and who can read a column."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.syntax import Syntax
from rich.table import Table as RichTable

from gateway.auth.config import ClaimMapping
from gateway.auth.tokens import principal_from_claims
from gateway.cli.common import ConfigOption, JsonOption, app, console, fail, load_all_or_exit
from gateway.errors import FedgateError
from gateway.policy.access import CompiledGrant
from gateway.policy.store import Policy
from gateway.principal import Principal
from gateway.settings import Settings

scopes_app = typer.Typer(no_args_is_help=True, help="What the policy's scopes grant.")
app.add_typer(scopes_app, name="scopes")


def _policy(config: Path | None) -> Policy:
    _, _, policy = load_all_or_exit(config)
    if policy is None:
        raise fail("the settings name no policy file (policy.file)")
    return policy


def _print_json(value: Any) -> None:
    console.print_json(orjson.dumps(value).decode())


@scopes_app.command("list")
def list_scopes(config: ConfigOption = None, as_json: JsonOption = False) -> None:
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
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Exactly what one scope grants: departments, tables and columns."""
    policy = _policy(config)
    definition = policy.scopes.get(scope)
    if definition is None:
        raise fail(f"there is no scope '{scope}'")
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
    column: Annotated[
        str,
        typer.Argument(
            help="department.table.column, or a bare column or identifier name (nhs_number) to ask about every "
            "table holding it"
        ),
    ],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Which scopes can read a column, and how: the rows their grants admit, the mask, the relationships."""
    policy = _policy(config)
    columns = _columns_named(policy, column)
    answer: list[dict[str, Any]] = [
        {
            "column": f"{department}.{table}.{name}",
            "identifier": identifier,
            "readers": [_reader(policy, grant, name) for grant in policy.grants_reading(department, table, name)],
        }
        for department, table, name, identifier in columns
    ]
    if as_json:
        _print_json({"query": column, "columns": answer})
        return
    view = RichTable(title=f"Who can read {column}")
    for heading in ("column", "scope", "rows", "shown as", "reached"):
        view.add_column(heading, overflow="fold")
    for entry in answer:
        if not entry["readers"]:
            view.add_row(entry["column"], "(no scope)", "", "", "")
        for reader in entry["readers"]:
            reached = "at the root" if not reader["via"] else "only via " + ", ".join(reader["via"])
            view.add_row(entry["column"], reader["scope"], reader["rows"], reader["shown_as"], reached)
    console.print(view)


def _columns_named(policy: Policy, name: str) -> list[tuple[str, str, str, str | None]]:
    """(department, table, column, identifier kind) for a full name, or for every column with this name or
    holding this identifier kind; exit 2 if there is none."""
    parts = name.split(".")
    if len(parts) not in (1, 3):
        raise fail(f"'{name}': name the column as department.table.column, or give a bare column name")
    found = [
        (department.name, table.name, column.name, column.identifier)
        for department in policy.catalog.departments
        for table in department.tables
        for column in table.columns
        if (
            parts == [department.name, table.name, column.name]
            if len(parts) == 3
            else name in (column.name, column.identifier)
        )
    ]
    if not found:
        raise fail(f"{name} is not a column or identifier of the catalog")
    return found


def _reader(policy: Policy, grant: CompiledGrant, column: str) -> dict[str, Any]:
    mask = grant.masks.get(column)
    return {
        "scope": grant.scope,
        "description": policy.scopes[grant.scope].description,
        "rows": "all rows" if grant.row_filter is None else f"where {grant.row_filter.text}",
        "shown_as": "stored value" if mask is None else mask.describe(),
        "via": sorted(grant.via),
    }


@app.command("explain")
def explain_query(
    query: Annotated[str, typer.Argument(help="The GraphQL query.")],
    client: Annotated[str | None, typer.Option(help="A dev-issuer client whose scopes and claims to use.")] = None,
    scope: Annotated[list[str] | None, typer.Option(help="A scope of the principal (repeatable).")] = None,
    claim: Annotated[list[str] | None, typer.Option(help="A claim of the principal, name=value (repeatable).")] = None,
    variables: Annotated[str | None, typer.Option(help="Variables as JSON.")] = None,
    purpose: Annotated[
        str | None, typer.Option(help="The purpose of use the request states (unless the client's token binds one).")
    ] = None,
    justification: Annotated[str | None, typer.Option(help="The justification, if the purpose needs one.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """What a client would see for a query, for a purpose: the SQL each department would run, without running it."""
    from gateway.error_format import graphql_errors
    from gateway.execution.guarded_adapters import GuardedAdapters
    from gateway.explain import explain
    from gateway.service import Gateway, GraphQLRequest

    settings, catalog, policy = load_all_or_exit(config)
    principal = _principal(settings, client, scope or [], claim or [])
    gateway = Gateway(catalog, settings, GuardedAdapters(catalog), policy)
    stated = {"fedgate-purpose": purpose} if purpose is not None else {}
    if justification is not None:
        stated["fedgate-justification"] = justification
    try:
        if principal.bound_purpose is not None and purpose not in (None, principal.bound_purpose[0]):
            raise fail(f"the client's token binds the purpose '{principal.bound_purpose[0]}'")
        principal = gateway.with_purpose(principal, stated, header=True)
        prepared = gateway.prepare(
            GraphQLRequest(query, None, orjson.loads(variables) if variables else None), principal
        )
    except FedgateError as error:
        raise fail("; ".join(problem["message"] for problem in graphql_errors(error))) from None
    statements = explain(prepared.bound)
    if as_json:
        shown = {"subject": principal.subject, "scopes": sorted(principal.scopes)}
        if principal.purpose is not None:
            shown["purpose"] = principal.purpose.name
        _print_json({"principal": shown, "statements": statements})
        return
    why = f" for the purpose {principal.purpose.name}" if principal.purpose is not None else ""
    console.print(f"[bold]{principal.subject}[/] with scopes {', '.join(sorted(principal.scopes)) or '(none)'}{why}")
    for number, statement in enumerate(statements, start=1):
        batched = " (one statement for all parent rows)" if statement["batched"] else ""
        console.print(f"\n[bold]{number}. {statement['department']}.{statement['table']}[/]{batched}")
        if "role" in statement:
            console.print(f"   for: {statement['role']}", highlight=False)
        for grant in statement["grants"] or ["none: authentication is off"]:
            console.print(f"   grant: {grant}", highlight=False)
        console.print(Syntax(statement["sql"], "sql", word_wrap=True, background_color="default"))
        for parameter in statement["parameters"]:
            console.print(f"   {parameter['placeholder']}: {parameter['from']}", highlight=False)


def _principal(settings: Settings, client: str | None, scopes: list[str], claims: list[str]) -> Principal:
    mapping = settings.auth.issuers[0].claims if settings.auth.issuers else ClaimMapping()
    raw: dict[str, Any] = {}
    if client is not None:
        definition = settings.dev_issuer.client(client) if settings.dev_issuer is not None else None
        if definition is None:
            raise fail(f"'{client}' is not a client of the development issuer; use --scope and --claim")
        raw = {"sub": client, "client_id": client, "scope": " ".join(definition.scopes), **definition.claims}
    for item in claims:
        name, _, value = item.partition("=")
        raw[name] = value
    raw.setdefault("sub", "explain")
    if scopes:
        raw["scope"] = " ".join(scopes)
    raw.setdefault(mapping.subject, raw["sub"])
    return principal_from_claims(raw, mapping, issuer=None)
