"""The policy expression language: row filters and ``sql(...)`` masks.

Security teams write SQL expressions over one table's columns and the principal's attributes::

    la_code = :principal.org_code
    gp_practice_code IN (:principal.practices) AND date_of_death IS NULL

They are parsed once at start-up with sqlglot and checked against a whitelist of constructs that

* every source renders with the same meaning (no dialect-specific functions), and
* can never raise an error (no division, no casts of column values, no subqueries): an error that
  depended on a row the caller may not see would reveal that row.

Text comparisons are made binary (code point, case-sensitive) exactly as in caller filters, so a
council code ``e08000035`` cannot match ``E08000035`` on a case-insensitive database. Anything else
stops start-up with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from adapters.canonical import BinaryText
from adapters.values import decoder
from schema.catalog import Table
from schema.types import ColumnType, refusal

PRINCIPAL_PREFIX = "principal__"

_ALLOWED: tuple[type[exp.Expr], ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Placeholder, exp.Paren, exp.Tuple,
    exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In, exp.Between,
    exp.Like, exp.Escape, exp.Neg, exp.Add, exp.Sub, exp.Mul, exp.Upper, exp.Lower, exp.Trim, exp.Length,
    exp.Coalesce, exp.Case, exp.If, exp.CurrentDate, exp.Substring, exp.StrPosition, exp.Concat, exp.DPipe,
)  # fmt: skip
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Like, exp.Between)


class PolicyExpressionError(ValueError):
    """A policy expression cannot be accepted; the message says why (it becomes the config error reason)."""


@dataclass(frozen=True)
class PolicyExpression:
    """A checked expression over one table: canonical tree, the columns and principal attributes it uses."""

    tree: exp.Expr
    columns: frozenset[str]
    attributes: frozenset[str]

    @property
    def text(self) -> str:
        """The expression as its author would write it: ``:principal.x`` placeholders, and text comparisons
        without the :class:`BinaryText` wrapper every engine renders its own way (they are exact: by code
        point, case and trailing spaces significant, as ``docs/policy.md`` says)."""
        readable = self.tree.copy()
        for wrapped in list(readable.find_all(BinaryText)):
            wrapped.replace(wrapped.this)
        for identifier in readable.find_all(exp.Identifier):
            identifier.set("quoted", False)  # catalog names are plain SQL names (SqlName)
        for node in list(readable.find_all(exp.Placeholder)):
            if node.name.startswith(PRINCIPAL_PREFIX):
                node.replace(exp.Placeholder(this=f"principal.{node.name.removeprefix(PRINCIPAL_PREFIX)}"))
        return readable.sql()

    def bind(self, alias: str, attribute: Callable[[str, exp.Placeholder], exp.Expr]) -> exp.Expr:
        """The tree with columns qualified by ``alias`` and each ``:principal.x`` replaced by ``attribute(x, node)``."""
        tree = self.tree.copy()
        for column in list(tree.find_all(exp.Column)):
            column.set("table", exp.to_identifier(alias, quoted=True))
        for node in list(tree.find_all(exp.Placeholder)):
            replacement = attribute(node.name.removeprefix(PRINCIPAL_PREFIX), node)
            if node is tree:
                return replacement
            node.replace(replacement)
        return tree


def conjunction(first: PolicyExpression | None, second: PolicyExpression | None) -> PolicyExpression | None:
    """Both conditions (either alone when the other is ``None``): rows must satisfy each."""
    if first is None or second is None or first.tree == second.tree:
        return first or second
    tree = exp.and_(exp.paren(first.tree.copy(), copy=False), exp.paren(second.tree.copy(), copy=False))
    return PolicyExpression(tree, first.columns | second.columns, first.attributes | second.attributes)


def parse_condition(text: str, table: Table) -> PolicyExpression:
    """A row filter: a boolean expression over ``table``'s columns and the principal's attributes."""
    tree = _parse(text, table)
    if not isinstance(tree, (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.Paren)):
        raise PolicyExpressionError("a row filter must be a condition (a comparison, IN, IS NULL, AND/OR/NOT...)")
    return _checked(tree, table)


def parse_value(text: str, table: Table) -> PolicyExpression:
    """A value for ``sql(...)`` masks: an expression over ``table``'s columns (no principal attributes)."""
    checked = _checked(_parse(text, table), table)
    if checked.attributes:
        raise PolicyExpressionError("a mask cannot depend on the principal's attributes")
    return checked


def _parse(text: str, table: Table) -> exp.Expr:
    if ";" in text:
        raise PolicyExpressionError("only one expression, without ';'")
    try:
        tree = sqlglot.parse_one(text, into=exp.Condition)
    except ParseError as error:
        raise PolicyExpressionError(f"not a valid SQL expression: {error.errors[0]['description']}") from None
    return _principal_placeholders(tree)


def _principal_placeholders(tree: exp.Expr) -> exp.Expr:
    """``:principal.org_code`` (parsed as a dot on a placeholder) → one placeholder ``principal__org_code``."""
    for dot in list(tree.find_all(exp.Dot)):
        target, attribute = dot.this, dot.expression
        if isinstance(target, exp.Placeholder) and target.name == "principal" and isinstance(attribute, exp.Identifier):
            replacement = exp.Placeholder(this=f"{PRINCIPAL_PREFIX}{attribute.name}")
            if dot is tree:
                return replacement
            dot.replace(replacement)
    return tree


def _checked(tree: exp.Expr, table: Table) -> PolicyExpression:
    columns: set[str] = set()
    attributes: set[str] = set()
    for node in tree.walk():
        if isinstance(node, exp.DataType) and isinstance(node.parent, exp.Cast):
            continue
        if isinstance(node, exp.Cast):
            if not isinstance(node.this, exp.Literal) or node.to.this not in {exp.DType.DATE, exp.DType.TIMESTAMP}:
                raise PolicyExpressionError("only DATE '...' and TIMESTAMP '...' literals may be cast")
            continue
        if not isinstance(node, _ALLOWED):
            raise PolicyExpressionError(f"'{node.sql()}' is not allowed in policy expressions ({type(node).__name__})")
        if isinstance(node, exp.Literal) and node.is_string:
            reason = refusal(node.this, ColumnType.STRING)
            if reason is not None:
                raise PolicyExpressionError(f"a text literal is not usable: {reason}")
        if isinstance(node, exp.Placeholder):
            if not node.name.startswith(PRINCIPAL_PREFIX):
                raise PolicyExpressionError("the only placeholders are :principal.<attribute>")
            attributes.add(node.name.removeprefix(PRINCIPAL_PREFIX))
        elif isinstance(node, exp.Column):
            if node.table and node.table != table.name:
                raise PolicyExpressionError(f"'{node.sql()}' refers to another table; use {table.name}'s columns only")
            if node.name not in table.columns_by_name:
                raise PolicyExpressionError(f"column '{node.name}' does not exist in {table.name}")
            columns.add(node.name)
            node.set("table", None)
            node.set("this", exp.to_identifier(node.name, quoted=True))
    _binary_text(tree, table)
    for like in list(tree.find_all(exp.Like)):
        if not isinstance(like.parent, exp.Escape):  # one escape character on every engine, as in caller filters
            escaped = exp.Escape(this=like.copy(), expression=exp.Literal.string("\\"))
            tree = escaped if like is tree else tree
            if like is not escaped.this and like.parent is not None:
                like.replace(escaped)
    return PolicyExpression(tree, frozenset(columns), frozenset(attributes))


def _binary_text(tree: exp.Expr, table: Table) -> None:
    """Wrap text columns compared by the expression in :class:`BinaryText` (code point, case-sensitive)."""
    for node in list(tree.find_all(*_COMPARISONS)):
        for key in ("this", "expression"):
            operand = node.args.get(key)
            if isinstance(operand, exp.Column) and table.column(operand.name).type is ColumnType.STRING:
                node.set(key, BinaryText(this=operand.copy()))


def compared_column(placeholder: exp.Expr) -> exp.Column | None:
    """The column a principal attribute is compared with (its type decides how the value is bound)."""
    comparison = placeholder.find_ancestor(*_COMPARISONS)
    if comparison is None:
        return None
    for operand in (comparison.this, *comparison.expressions, comparison.args.get("expression")):
        target = operand.this if isinstance(operand, BinaryText) else operand
        if isinstance(target, exp.Column):
            return target
    return None


def attribute_type(column: exp.Column | None, table: Table) -> ColumnType:
    """The type a principal attribute is bound as: the compared column's, else text."""
    if column is None or column.name not in table.columns_by_name:
        return ColumnType.STRING
    return table.column(column.name).type


def convert_attribute(value: Any, column_type: ColumnType) -> Any:
    """A claim value as ``column_type`` (lists element-wise); ``None`` when it does not convert.

    An absent or unconvertible attribute matches nothing (SQL: a comparison with NULL is never true),
    so a principal without the attribute a filter needs sees no rows: fail closed. So does a value no engine
    compares the same way (:func:`schema.types.refusal`: text with NUL, an integer beyond 64 bits...).
    """
    if isinstance(value, list):
        converted = [convert_attribute(item, column_type) for item in value]
        return [item for item in converted if item is not None]
    if value is None:
        return None
    try:
        converted = _converted(value, column_type)
    except (TypeError, ValueError, ArithmeticError):
        return None
    return None if refusal(converted, column_type) is not None else converted


def _converted(value: Any, column_type: ColumnType) -> Any:
    if column_type is ColumnType.INTEGER:
        return int(value)
    if column_type is ColumnType.FLOAT:
        return float(value)
    if column_type is ColumnType.BOOLEAN:
        return value if isinstance(value, bool) else str(value).lower() in {"true", "1", "yes"}
    if column_type in (ColumnType.DATE, ColumnType.DATETIME, ColumnType.DECIMAL):
        return decoder(column_type)(value)
    return str(value)
