"""What a query would run, for security officers: per statement, the final SQL after the policy
rewrite (placeholders, never values), where each parameter comes from, and which grants applied.

Served as ``extensions.plan`` to principals holding ``policy.explain_scope``, and printed by
``fedgate explain --client <id> '<query>'`` without running anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.plan.plan import BoundPlan


def explain(bound: BoundPlan, keys_moved: Mapping[int, Mapping[str, int]] | None = None) -> list[dict[str, Any]]:
    """One entry per statement, in the order the plan runs them (roots first, then each level).

    Statements of an entity field also say what they are for (``role``): a semi-join step with its
    estimate and whether it receives the keys found so far, a translation between identifiers, the page
    of keys, the link rows, a member. After execution, ``keys_moved`` adds to each semi-join step that
    ran how many keys it received and returned (``keys: {in, out}``): counts, never values.
    """
    plan = bound.plan
    roles: dict[int, str] = {}
    for root in plan.roots:
        roles.update(root.roles())
    entries = []
    for scan in plan.ordered_scans():
        statement = bound.statement(scan)
        entries.append(
            {
                "department": scan.department.name,
                "table": scan.table.name,
                "batched": scan.keys_parameter is not None,
                "sql": statement.display_sql,
                "parameters": [
                    {"placeholder": shown, "from": scan.parameters[_base(name)].describe()}
                    for shown, name in statement.placeholders
                ],
                "grants": list(scan.grants),
            }
        )
        if id(scan) in roles:
            entries[-1]["role"] = roles[id(scan)]
        if keys_moved and id(scan) in keys_moved:
            entries[-1]["keys"] = dict(keys_moved[id(scan)])
    return entries


def _base(name: str) -> str:
    """A MariaDB key set expands ``p3`` into ``p3_0, p3_1...``: they all come from ``p3``."""
    return name.rsplit("_", 1)[0] if "_" in name else name
