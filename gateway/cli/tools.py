"""Configuration tools: ``check`` and ``introspect``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import httpx
import typer
import yaml

from gateway.cli.common import ConfigOption, JsonOption, app, console, errors, fail, settings_path
from gateway.configuration import load_configuration
from gateway.errors import FedgateError
from gateway.graphiql_assets import missing_assets_advice
from gateway.listening import busy_now
from gateway.policy.agreement_lint import lint_agreements
from gateway.policy.lint import Finding, lint, print_findings
from gateway.policy.store import utc_now


@app.command()
def check(
    config: ConfigOption = None,
    strict: Annotated[bool, typer.Option(help="Treat warnings as errors.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate everything `fedgate serve` loads, as it loads it, and lint the scopes.

    Settings, catalog, policy, the policy secret's strength, the environment variables secrets are read from,
    the files serve reads or creates (nothing is written), and the listening addresses (bound and let go at
    once). Exit 2 with one line per problem where serve would refuse to start; 1 on lint errors (or warnings
    with --strict); 0 otherwise. Run it where, and as whom, fedgate will serve.
    """
    try:
        loaded = load_configuration(settings_path(config), create_files=False)
        busy = [busy_now(listener.host, listener.port, what=listener.what) for listener in loaded.listeners]
    except FedgateError as error:
        raise fail(str(error)) from None
    settings, catalog, policy = loaded.settings, loaded.catalog, loaded.policy
    findings = lint(policy, catalog, explain_scope=settings.policy.explain_scope) if policy else []
    if policy is not None:
        findings += lint_agreements(policy, utc_now(), explain_scope=settings.policy.explain_scope)
    findings.extend(Finding("warning", "", f"{reason} (at the moment)", "server") for reason in busy if reason)
    assets = settings.graphiql.assets_path
    advice = missing_assets_advice(assets) if assets is not None and settings.graphiql.enabled else None
    if advice is not None:
        findings.append(Finding("warning", "", advice, "graphiql"))
    print_findings(findings, console, as_json=as_json)
    tables = sum(len(department.tables) for department in catalog.departments)
    scopes = len(policy.scopes) if policy else 0
    if not as_json:
        console.print(f"checked: {len(catalog.departments)} departments, {tables} tables, {scopes} scopes")
    failing = [f for f in findings if f.severity == "error" or (strict and f.severity == "warning")]
    if failing:
        raise typer.Exit(1)


@app.command()
def introspect(
    url: Annotated[str, typer.Argument(help="sqlite:///path.db, postgresql://user@host/db or mysql://user@host/db")],
    department: Annotated[str, typer.Option(help="Name of the department in the catalog.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of printing.")] = None,
    password_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the database password.")
    ] = None,
) -> None:
    """Read a live database's tables and write a catalog skeleton to edit."""
    from gateway.catalog_skeleton import catalog_skeleton

    try:
        skeleton = asyncio.run(catalog_skeleton(url, department, password_env))
    except FedgateError as error:
        raise fail(error.message) from None
    text = yaml.safe_dump(skeleton, sort_keys=False, allow_unicode=True, width=110)
    if output is None:
        console.print(text, highlight=False, markup=False)
    else:
        output.write_text(text, encoding="utf-8")
        errors.print(f"wrote {output}")


@app.command("graphiql-assets")
def graphiql_assets(
    directory: Annotated[Path, typer.Argument(help="Folder to write the assets to (graphiql.assets_dir).")],
    registry: Annotated[str, typer.Option(help="npm registry to download from.")] = "https://registry.npmjs.org",
) -> None:
    """Download GraphiQL's assets (integrity-checked) for serving inside a closed network."""
    from gateway.graphiql_assets import AssetIntegrityError, fetch_assets

    try:
        written = fetch_assets(directory, registry)
    except (AssetIntegrityError, httpx.HTTPError) as error:
        raise fail(f"cannot fetch GraphiQL's assets: {error}") from None
    console.print(f"{len(written)} asset(s) written to {directory}; set graphiql.assets_dir to serve them")
