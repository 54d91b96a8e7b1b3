"""The subjects pass: the audit's subject columns read their identifiers' stored values.

A statement whose rows reach the caller also reads, for the audit, each identifier column of its table
under the name ``_fedgate_subject_<column>`` (:attr:`~gateway.plan.nodes.ScanNode.subjects`): whom each
row is about, whatever the caller may see of it (a caller shown a pseudonym is still recorded against the
real person). Where the protect pass put the table behind its policy subquery, that subquery already
provides them (:class:`~gateway.policy.rewrite.TablePolicy`); where it left the table as it is, this pass
makes each subject column read its column directly. Rows are only those the statement returns: the
caller's filters and the policy's row filters apply to them as to every other column.
"""

from __future__ import annotations

import dataclasses

from sqlglot import exp

from adapters.base import SourceQuery
from gateway.pipeline.target import Target
from gateway.plan.nodes import SUBJECT_PREFIX, ScanNode
from gateway.plan.plan import Plan


def subjects(plan: Plan, target: Target) -> Plan:
    """``plan`` with every subject column reading its identifier (nothing to do without the audit)."""
    if not target.capture_subjects:
        return plan
    return plan.map_scans(read_subjects)


def read_subjects(scan: ScanNode) -> ScanNode:
    """``scan`` with each subject column that names its table directly reading the column itself."""
    if not scan.subjects:
        return scan
    select = scan.query.select.copy()
    alias = scan.table.name
    changed = False
    for column in list(select.find_all(exp.Column)):
        if column.table != alias or not column.name.startswith(SUBJECT_PREFIX) or not _reads_the_table(column):
            continue
        stored = exp.column(column.name.removeprefix(SUBJECT_PREFIX), table=alias, quoted=True)
        column.replace(
            exp.alias_(stored, column.name, quoted=True) if isinstance(column.parent, exp.Select) else stored
        )
        changed = True
    if not changed:
        return scan
    query = SourceQuery(scan.query.department, select, scan.query.columns, scan.query.parameters)
    return dataclasses.replace(scan, query=query)


def _reads_the_table(column: exp.Column) -> bool:
    """Whether the SELECT ``column`` belongs to reads its alias from the table itself (not a subquery)."""
    select = column.find_ancestor(exp.Select)
    if select is None:
        return False
    sources = [select.args.get("from_"), *(select.args.get("joins") or ())]
    for source in sources:
        node = source.this if source is not None else None
        if isinstance(node, exp.Table | exp.Subquery) and node.alias_or_name == column.table:
            return isinstance(node, exp.Table)
    return False
