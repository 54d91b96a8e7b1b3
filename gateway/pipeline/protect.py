"""The protect pass: the caller's policy enforced inside every statement.

Each statement that reads a table the caller's grants filter or mask is rewritten so that every
reference to that table becomes its policy subquery (:class:`~gateway.policy.rewrite.TablePolicy`):
the caller's own conditions, ordering, keys and pages then operate on what the caller may see and
nothing else. The policy's values (principal attributes, key material) become parameters added after
the statement's own. Every statement also records, for explain, the grants enforced in it.
"""

from __future__ import annotations

import dataclasses

from adapters.base import SourceQuery
from gateway.pipeline.target import Target
from gateway.plan.nodes import ScanNode
from gateway.plan.plan import Plan
from gateway.planning.context import PlanPolicy
from gateway.planning.filters import Parameters
from gateway.policy.rewrite import TablePolicy


def protect(plan: Plan, target: Target) -> Plan:
    """``plan`` with the target's policy enforced in every statement (none: every caller sees all)."""
    policy = target.policy
    if policy is None or policy.access.unrestricted:
        return plan
    return plan.map_scans(lambda scan: protect_scan(scan, policy))


def protect_scan(scan: ScanNode, policy: PlanPolicy) -> ScanNode:
    """``scan`` reading its table through the caller's policy."""
    access = policy.access
    department, table = scan.department.name, scan.table
    grants = tuple(grant.describe() for grant in access.table(department, table.name).grants)
    rewrite = TablePolicy.for_table(access, department, table, policy.row_key_secret)
    if rewrite is None:
        return dataclasses.replace(scan, grants=grants)
    parameters = Parameters(scan.parameters)
    select = rewrite.protect(scan.query.select.copy(), table.name, parameters)
    query = SourceQuery(scan.query.department, select, scan.query.columns, parameters.specs())
    return dataclasses.replace(scan, query=query, parameters=dict(parameters.items), grants=grants)
