"""``fedgate check``'s policy lint: what is valid but probably wrong.

Invalid policies never load (unknown tables or columns, duplicate scopes stop start-up). These findings
are about policies that load but deserve a second look:

* ``error``: a scope that grants nothing (apart from the explain scope, which needs no grants);
* ``warning``: two scopes that grant exactly the same thing; an identifier column (NHS number, NINO...)
  granted unmasked on a grant with no row filter and no ``via``, i.e. readable for every row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import orjson
from rich.console import Console
from rich.table import Table as RichTable

from gateway.policy.store import Policy
from schema.catalog import Catalog

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    severity: Severity
    scope: str
    message: str
    table: str = ""


def lint(policy: Policy, catalog: Catalog, *, explain_scope: str) -> list[Finding]:
    findings: list[Finding] = []
    seen: dict[frozenset[tuple[object, ...]], str] = {}
    for scope in policy.document.scopes:
        if not scope.grants:
            if scope.name != explain_scope:
                findings.append(Finding("error", scope.name, "the scope grants nothing"))
            continue
        signature = frozenset(
            (grant.table, policy.grant_columns(grant), grant.row_filter, tuple(sorted(grant.masks.items())),
             tuple(grant.via))
            for grant in scope.grants
        )  # fmt: skip
        if signature in seen:
            findings.append(Finding("warning", scope.name, f"grants exactly what '{seen[signature]}' grants"))
        seen.setdefault(signature, scope.name)
        for grant in scope.grants:
            if grant.row_filter is not None or grant.via:
                continue  # rows are restricted
            _, table = catalog.table(grant.table)
            identifiers = sorted(
                column.name
                for column in table.columns
                if column.identifier is not None
                and column.name in policy.grant_columns(grant)
                and column.name not in grant.masks
            )
            if identifiers:
                findings.append(
                    Finding(
                        "warning",
                        scope.name,
                        f"identifiers readable on every row, with no row filter or mask: {', '.join(identifiers)}",
                        grant.table,
                    )
                )
    return findings


def print_findings(findings: list[Finding], console: Console, *, as_json: bool, title: str = "Policy findings") -> None:
    if as_json:
        console.print_json(orjson.dumps([asdict(finding) for finding in findings]).decode())
        return
    if not findings:
        console.print("no findings")
        return
    table = RichTable(title=title)
    for column in ("severity", "scope", "table", "finding"):
        table.add_column(column)
    for finding in findings:
        colour = "red" if finding.severity == "error" else "yellow"
        table.add_row(f"[{colour}]{finding.severity}[/]", finding.scope, finding.table, finding.message)
    console.print(table)
