"""Fusing a nested level into its parent's statement, on sources that can join laterally.

A root scan and one of its child levels on the same department normally take two statements: the
parents, then the children of all of them (``WHERE key IN :keys``). Where the source has ``LATERAL``
joins (:attr:`~adapters.base.Capability.LATERAL_JOINS`), the two become one round trip:

    SELECT parent.*, parent._fedgate_prn, child.*, child._fedgate_rn
    FROM (<parent statement> + ROW_NUMBER() OVER (<its order>) AS _fedgate_prn) AS _fedgate_parent
    LEFT JOIN LATERAL (<child statement, its key set now "key = _fedgate_parent.key">) AS _fedgate_child
      ON TRUE
    ORDER BY _fedgate_prn, _fedgate_rn

Both statements are taken as the protect pass left them, policy subqueries included, so the same rows
and masked values come out: only where the child's keys come from changes (the parent row, instead
of a list bound from the parent rows). The fused scan is a new one (the root scan is never changed); its
:class:`~gateway.plan.nodes.FusedChild` describes the rows' layout and splits each back into its
parent part and its child part. A child level is fused only when its page is computed by the source (a
window, or no page at all): a page the executor would slice is left as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from sqlglot import exp

from adapters.base import Capabilities, Capability, OutputColumn, SourceQuery
from adapters.canonical import key_set_parameter
from gateway.plan.nodes import ChildEdge, FusedChild, ScanNode
from gateway.planning.statements import PAGE_ALIAS, ROW_NUMBER
from schema.types import ColumnType

PARENT_ALIAS = "_fedgate_parent"
CHILD_ALIAS = "_fedgate_child"
PARENT_ROW = "_fedgate_prn"
#: Prefix of the child statement's parameters once fused (the parent's keep their names).
CHILD_PARAMETER_PREFIX = "c"


def fuse_root(node: ScanNode, capabilities: Mapping[str, Capabilities]) -> ScanNode:
    """Root scan ``node`` with its first fusable child level fused into its statement, if its source can
    (``node`` itself when nothing is fused). ``node`` is not changed: the fused scan is a new one, and the
    child level it absorbed no longer runs on its own (:meth:`~gateway.plan.nodes.ScanNode.walk`)."""
    source = capabilities.get(node.department.name)
    if node.fused is not None or source is None or not source.supports(Capability.LATERAL_JOINS):
        return node
    for index, edge in enumerate(node.children):
        if _fusable(node, edge):
            return _fused(node, index, edge)
    return node


def _fusable(parent: ScanNode, edge: ChildEdge) -> bool:
    child = edge.node
    return (
        child.department.name == parent.department.name
        and child.keys_parameter is not None
        and child.key_index is not None
        and child.residual_page is None
    )


def _fused(parent: ScanNode, index: int, edge: ChildEdge) -> ScanNode:
    child = edge.node
    assert child.keys_parameter is not None and child.key_index is not None
    windowed = child.page is not None
    parent_select = parent.query.select.copy()
    order = parent_select.args.get("order")
    window = exp.Window(
        this=exp.RowNumber(),
        order=exp.Order(expressions=[item.copy() for item in order.expressions]) if order else None,
    )
    parent_select = parent_select.select(exp.alias_(window, PARENT_ROW, quoted=True))

    renamed = {name: f"{CHILD_PARAMETER_PREFIX}{name}" for name in child.parameters if name != child.keys_parameter}
    child_select = child.query.select.copy()
    parent_key = parent.query.columns[edge.parent_key_index].name
    _correlate(child_select, child.keys_parameter, _ref(PARENT_ALIAS, parent_key))
    for placeholder in child_select.find_all(exp.Placeholder):
        placeholder.set("this", renamed[placeholder.name])
    if windowed:
        child_select = child_select.select(_ref(PAGE_ALIAS, ROW_NUMBER))

    selected = [(PARENT_ALIAS, column) for column in parent.query.columns]
    selected.append((PARENT_ALIAS, OutputColumn(PARENT_ROW, ColumnType.INTEGER)))
    selected += [(CHILD_ALIAS, column) for column in child.query.columns]
    order_by = [(PARENT_ALIAS, PARENT_ROW)]
    if windowed:
        selected.append((CHILD_ALIAS, OutputColumn(ROW_NUMBER, ColumnType.INTEGER)))
        order_by.append((CHILD_ALIAS, ROW_NUMBER))
    lateral = exp.Lateral(this=child_select.subquery(), alias=exp.TableAlias(this=exp.to_identifier(CHILD_ALIAS, True)))
    fused = (
        exp.select(*(_ref(alias, column.name) for alias, column in selected))
        .from_(exp.alias_(parent_select.subquery(), PARENT_ALIAS, quoted=True, table=True))
        .join(lateral, join_type="LEFT", on=exp.true())
        .order_by(*(exp.Ordered(this=_ref(alias, name), desc=False) for alias, name in order_by))
    )
    specs = dict(parent.query.parameters)
    specs.update({renamed[name]: spec for name, spec in child.query.parameters.items() if name in renamed})
    return dataclasses.replace(
        parent,
        query=SourceQuery(parent.query.department, fused, tuple(column for _, column in selected), specs),
        parameters={**parent.parameters, **{renamed[name]: child.parameters[name] for name in renamed}},
        grants=tuple(dict.fromkeys((*parent.grants, *child.grants))),
        fused=FusedChild(index, len(parent.query.columns), len(child.query.columns), child.key_index),
    )


def _ref(alias: str, name: str) -> exp.Column:
    return exp.column(name, table=alias, quoted=True)


def _correlate(select: exp.Select, keys_parameter: str, parent_key: exp.Expr) -> None:
    """The child's key set (``key IN :keys``) becomes ``key = <the parent row's key>``."""
    for node in list(select.find_all(exp.In)):
        if key_set_parameter(node) == keys_parameter:
            node.replace(exp.EQ(this=node.this.copy(), expression=parent_key))
            return
    raise AssertionError("a child statement without its key set")
