"""Which conditions of a statement an API may apply for us (filter pushdown for REST and GraphQL sources).

A source that cannot run SQL still receives the whole canonical statement. fedgate fetches rows from
the API and then evaluates the *entire* statement on them (:mod:`adapters.residual`), so pushing a
condition down is only ever an optimisation: it must let the API return fewer rows, never fewer than
the statement needs. A condition qualifies when every row of the statement's true result satisfies it
on the **raw** (unmasked) row the API holds:

* a top-level conjunct of a ``WHERE`` clause (never a branch of an ``OR``, never under ``NOT``);
* comparing a column that reaches that clause unchanged from the table (a masked column is an
  expression, not a column, so a caller's filter on a masked value is never sent to the API);
* against a bound parameter or a plain literal;
* in a level that reads the table's rows as they are: once a level pages, groups, deduplicates or
  numbers its rows (the per-parent page's ``ROW_NUMBER()``), the conditions of the levels around it
  are not pushed.

The policy's own row filter qualifies on the same terms (it is a ``WHERE`` on the raw table), which
lets a department's API pre-filter to the caller's organisation. Each :class:`Condition` names its
value's placeholder (bound at fetch time) or carries the literal.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlglot import exp

from adapters.base import SourceQuery
from adapters.canonical import BinaryText, key_set_parameter

Operator = Literal["eq", "in", "gt", "gte", "lt", "lte"]
_OPERATORS: Mapping[type[exp.Expr], Operator] = {
    exp.EQ: "eq",
    exp.GT: "gt",
    exp.GTE: "gte",
    exp.LT: "lt",
    exp.LTE: "lte",
}
#: ``value < column`` is ``column > value``.
_MIRRORED: Mapping[Operator, Operator] = {"eq": "eq", "gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte", "in": "in"}


@dataclass(frozen=True, slots=True)
class Condition:
    """``column operator value`` on the raw table. ``parameter`` names the placeholder holding the value
    (a list for ``in``); otherwise ``values`` holds literal values (one, or several for ``in``)."""

    column: str
    operator: Operator
    parameter: str | None = None
    values: tuple[Any, ...] = ()

    def resolve(self, bound: Mapping[str, Any]) -> list[Any]:
        """The value(s) at fetch time, as a list (one item except for ``in``)."""
        if self.parameter is None:
            return list(self.values)
        value = bound[self.parameter]
        return list(value) if self.operator == "in" else [value]


def pushable_conditions(query: SourceQuery, table_name: str) -> list[Condition]:
    """The conditions of ``query`` an API holding ``table_name`` may apply, in statement order."""
    chain = _select_chain(query.select, table_name)
    if chain is None:
        return []
    conditions: list[Condition] = []
    inputs: dict[str, str] | None = None  # None: the level reads the table itself
    for select in chain:
        where = select.args.get("where")
        if where is not None:
            for conjunct in _conjuncts(where.this):
                condition = _condition(conjunct, inputs)
                if condition is not None:
                    conditions.append(condition)
        if _reshapes(select):
            break  # the levels above see this level's page, groups or row numbers, not the table's rows
        inputs = _plain_outputs(select, inputs)
    return conditions


def _select_chain(select: exp.Select, table_name: str) -> list[exp.Select] | None:
    """The selects from the one reading the table outwards, each reading the one before as its only source.

    ``None`` when the statement has another shape (a join, a union): then nothing is pushed.
    """
    chain = [select]
    while True:
        current = chain[-1]
        if any(current.args.get(key) for key in ("joins", "laterals", "with_", "pivots")):
            return None
        source = current.args.get("from_")
        if source is None:
            return None
        inner = source.this
        if isinstance(inner, exp.Table):
            return list(reversed(chain)) if inner.name == table_name else None
        if isinstance(inner, exp.Subquery) and isinstance(inner.this, exp.Select):
            chain.append(inner.this)
            continue
        return None


def _reshapes(select: exp.Select) -> bool:
    """Whether ``select`` does more than filter and project: a page, grouping, ``DISTINCT`` or a window.

    A condition of an enclosing level then filters the result of that step, not the table: pushing it
    to the API would change which rows the step sees (a page would move, a row number would shift).
    """
    if any(select.args.get(key) for key in ("limit", "offset", "distinct", "group", "having", "qualify")):
        return True
    return any(projection.find(exp.Window, exp.AggFunc) is not None for projection in select.expressions)


def _conjuncts(condition: exp.Expr) -> Iterator[exp.Expr]:
    while isinstance(condition, exp.Paren):
        condition = condition.this
    if isinstance(condition, exp.And):
        yield from _conjuncts(condition.this)
        yield from _conjuncts(condition.expression)
    else:
        yield condition


def _raw_column(node: exp.Expr, inputs: dict[str, str] | None) -> str | None:
    """The table column ``node`` is, unchanged, at this level (text comparison by code point included)."""
    if isinstance(node, BinaryText):
        node = node.this
    if not isinstance(node, exp.Column):
        return None
    if inputs is None:
        return node.name
    return inputs.get(node.name)


def _value(node: exp.Expr) -> tuple[str | None, tuple[Any, ...]] | None:
    """``(placeholder, ())`` or ``(None, (literal,))`` for a bindable value, else ``None``."""
    if isinstance(node, exp.Placeholder):
        return node.name, ()
    if isinstance(node, exp.Literal):
        if node.is_string:
            return None, (node.this,)
        number = node.this
        return None, (float(number) if any(c in number for c in ".eE") else int(number),)
    if isinstance(node, exp.Boolean):
        return None, (bool(node.this),)
    return None


def _condition(node: exp.Expr, inputs: dict[str, str] | None) -> Condition | None:
    if isinstance(node, exp.In):
        column = _raw_column(node.this, inputs)
        if column is None or node.args.get("query"):
            return None
        parameter = key_set_parameter(node)
        if parameter is not None:
            return Condition(column, "in", parameter=parameter)
        literals = [_value(item) for item in node.expressions]
        if not literals or any(value is None or value[0] is not None for value in literals):
            return None
        return Condition(column, "in", values=tuple(value[1][0] for value in literals if value is not None))
    operator = _OPERATORS.get(type(node))
    if operator is None:
        return None
    for side, other, op in ((node.this, node.expression, operator), (node.expression, node.this, _MIRRORED[operator])):
        column = _raw_column(side, inputs)
        value = _value(other)
        if column is not None and value is not None:
            parameter, values = value
            return Condition(column, op, parameter=parameter, values=values)
    return None


def _plain_outputs(select: exp.Select, inputs: dict[str, str] | None) -> dict[str, str]:
    """Output name → table column, for the outputs that pass a table column through unchanged."""
    outputs: dict[str, str] = {}
    for projection in select.expressions:
        target = projection.this if isinstance(projection, exp.Alias) else projection
        column = _raw_column(target, inputs) if isinstance(target, exp.Column) else None
        if column is not None:
            outputs[projection.alias_or_name] = column
    return outputs
