"""``fedgate agreements``: the information sharing agreements, for information governance teams.

``list`` (one line each, with whether each is in force now), ``show ID`` (everything the register shows),
``check`` (every file validated; then the findings of :mod:`gateway.policy.agreement_lint`).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table as RichTable

from gateway.cli.common import ConfigOption, JsonOption, app, console, fail, load_all_or_exit
from gateway.policy.agreement_lint import lint_agreements
from gateway.policy.lint import print_findings
from gateway.policy.store import Policy, utc_now
from gateway.register import entry, register

agreements_app = typer.Typer(no_args_is_help=True, help="Information sharing agreements: list, show, check.")
app.add_typer(agreements_app, name="agreements")


def _policy(config: ConfigOption) -> Policy:
    _, _, policy = load_all_or_exit(config)
    if policy is None or policy.agreements is None:
        raise fail("these settings name no agreements folder (agreements.folder), or authentication is off")
    return policy


@agreements_app.command("list")
def list_agreements(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every agreement, and whether it is in force now."""
    policy = _policy(config)
    assert policy.agreements is not None
    now = utc_now()
    if as_json:
        console.print_json(data=register(policy.agreements.all, now)["agreements"])
        return
    table = RichTable(title=f"Information sharing agreements ({policy.agreements.folder})")
    for column in ("id", "version", "state", "purposes", "recipients", "expires"):
        table.add_column(column)
    for agreement in policy.agreements.all:
        shown = entry(agreement, now)
        table.add_row(
            shown["id"], str(shown["version"]), shown["state"], ", ".join(shown["purposes"]),
            ", ".join(shown["recipients"]), shown["expires"],
        )  # fmt: skip
    console.print(table)


@agreements_app.command("show")
def show(
    agreement_id: Annotated[str, typer.Argument(help="The agreement's id.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """One agreement, as the register shows it."""
    policy = _policy(config)
    assert policy.agreements is not None
    agreement = policy.agreements.by_id(agreement_id)
    if agreement is None:
        raise fail(f"no agreement '{agreement_id}' in {policy.agreements.folder}")
    shown = entry(agreement, utc_now())
    if as_json:
        console.print_json(data=shown)
        return
    console.print(f"[bold]{shown['title']}[/] ({shown['id']} version {shown['version']}): {shown['state']}")
    console.print(shown["summary"], highlight=False)
    basis = shown["lawful_basis"]
    rows = [
        ("shared by", ", ".join(shown["providers"])),
        ("shared with", ", ".join(shown["recipients"])),
        ("purposes", ", ".join(shown["purposes"])),
        ("lawful basis", "; ".join(filter(None, [basis["article_6"], basis["article_9"], basis["article_10"],
                                                   *basis["statutory_gateway"]]))),
        ("in force", f"{shown['starts']} until {shown['expires']} (review by {shown['review_by']})"),
        ("retention", shown["retention"]),
    ]  # fmt: skip
    for label, value in rows:
        console.print(f"  {label:<13} {value}", highlight=False)
    items = RichTable("table", "columns", "masks", "only rows where")
    for table, shared in shown["data_items"].items():
        masks = ", ".join(f"{column}: {mask}" for column, mask in shared["masks"].items())
        items.add_row(table, ", ".join(shared["columns"]), masks, shared["row_condition"] or "")
    console.print(items)


@agreements_app.command("check")
def check(
    config: ConfigOption = None,
    strict: Annotated[bool, typer.Option(help="Treat warnings as errors.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate every agreement (file, line, path and reason), then report what needs attention."""
    settings, _, _ = load_all_or_exit(config)
    policy = _policy(config)
    assert policy.agreements is not None
    findings = lint_agreements(policy, utc_now(), explain_scope=settings.policy.explain_scope)
    print_findings(findings, console, as_json=as_json, title="Agreement findings")
    if not as_json:
        console.print(f"checked: {len(policy.agreements.all)} agreements, {len(policy.scopes)} scopes")
    if [finding for finding in findings if finding.severity == "error" or strict]:
        raise typer.Exit(1)
