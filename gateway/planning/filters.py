"""Compiling ``where`` and ``orderBy`` arguments into canonical sqlglot expressions.

Semantics, identical for every source (``docs/graphql.md``):

* conditions on several columns, and several operators on one column, must all hold; ``and: []`` is
  true, ``or: []`` false; ``not`` holds exactly when its condition does not;
* comparisons follow SQL: a comparison with ``null`` (``eq: null``) matches nothing, and a row whose
  column is null matches no comparison but ``isNull: true``;
* text compares, matches (``like``, case-sensitive, ``\\`` escapes) and sorts by code point;
* ``ASC`` puts nulls last, ``DESC`` first; ties are always broken by the primary key, so pages are stable.

Every value becomes a placeholder with a :class:`~gateway.plan.nodes.Slot`; nothing from the
request is ever written into SQL text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlglot import exp

from adapters.base import ParameterSpec
from adapters.canonical import BinaryText, key_set, placeholder
from gateway.errors import BadUserInputError
from gateway.plan.nodes import (
    Const,
    FromVariable,
    Page,
    Parameter,
    Slot,
    list_length_check,
    offset_check,
    page_size_check,
)
from gateway.planning.arguments import Provenance, Var
from schema.catalog import Column, Table
from schema.graphql_types import PageSizes, TableInputs
from schema.types import ColumnType, refusal

_BINARY_OPERATORS: dict[str, type[exp.Binary]] = {
    "eq": exp.EQ,
    "ne": exp.NEQ,
    "lt": exp.LT,
    "lte": exp.LTE,
    "gt": exp.GT,
    "gte": exp.GTE,
}


class Parameters:
    """Allocates placeholder names for one statement and remembers where each value comes from."""

    def __init__(self, items: Mapping[str, Parameter] | None = None) -> None:
        #: The statement's parameters so far (a pass adding to a finished statement starts from its own).
        self.items: dict[str, Parameter] = dict(items or {})

    def add(self, spec: ParameterSpec, slot: Slot, origin: str = "") -> str:
        name = f"p{len(self.items)}"
        self.items[name] = Parameter(spec, slot, origin)
        return name

    def placeholder(self, spec: ParameterSpec, slot: Slot, origin: str = "") -> exp.Placeholder:
        return placeholder(self.add(spec, slot, origin))

    def specs(self) -> dict[str, ParameterSpec]:
        return {name: parameter.spec for name, parameter in self.items.items()}


def column_ref(column: Column, alias: str) -> exp.Column:
    return exp.column(column.name, table=alias, quoted=True)


def comparable(column: Column, alias: str) -> exp.Expr:
    """The column as compared and sorted: text by code point."""
    ref = column_ref(column, alias)
    return BinaryText(this=ref) if column.type is ColumnType.STRING else ref


def value_slot(
    value: Any, provenance: Provenance, column_type: ColumnType, check: Callable[[Any], Any] | None = None
) -> Slot:
    """A :class:`FromVariable` when the whole value is a variable, else a :class:`Const` (checked now).

    Either way the value passes ``check`` (a limit, a pattern rule) and then must be one every engine
    compares the same way (:func:`schema.types.refusal`; lists item by item), or the request is refused
    with ``BAD_USER_INPUT`` before any source is asked.
    """
    accept = _accepting(column_type, check)
    if isinstance(value, Var):
        return FromVariable(value.name, accept)
    return Const(accept(provenance.plain(value)))


def page_slots(arguments: Mapping[str, Any], provenance: Provenance, sizes: PageSizes) -> Page:
    """The ``limit`` and ``offset`` arguments of a list field, each checked against its maximum."""
    return Page(
        limit=value_slot(arguments.get("limit"), provenance, ColumnType.INTEGER, page_size_check(sizes)),
        offset=value_slot(arguments.get("offset"), provenance, ColumnType.INTEGER, offset_check(sizes.max_offset)),
    )


def _accepting(column_type: ColumnType, check: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    def accept(value: Any) -> Any:
        checked = check(value) if check is not None else value
        for item in checked if isinstance(checked, list) else (checked,):
            reason = refusal(item, column_type)
            if reason is not None:
                raise BadUserInputError(reason)
        return checked

    return accept


class FilterCompiler:
    """Turns one table's ``where`` argument into a condition over ``alias``."""

    def __init__(
        self, table: Table, inputs: TableInputs, alias: str, parameters: Parameters, provenance: Provenance, max_in: int
    ) -> None:
        self.table = table
        self.inputs = inputs
        self.alias = alias
        self.parameters = parameters
        self.provenance = provenance
        self.max_in = max_in
        #: Every column the caller's conditions mention, by name.
        self.used: dict[str, Column] = {}

    def condition(self, where: Any) -> exp.Expr | None:
        """The condition for a ``where`` value, or ``None`` when it imposes nothing."""
        if isinstance(where, Var):
            where = self.provenance.plain(where)
        if where is None:
            return None
        parts: list[exp.Expr] = []
        for key, value in where.items():
            if isinstance(value, Var):
                value = self.provenance.plain(value)
            if value is None:
                continue
            if key == "and":
                parts.append(_conjunction([self.condition(item) or exp.true() for item in value]))
            elif key == "or":
                disjuncts = [self.condition(item) or exp.true() for item in value]
                parts.append(exp.paren(exp.or_(*disjuncts), copy=False) if disjuncts else exp.false())
            elif key == "not":
                # Two-valued: `not` holds exactly when its condition does not, so a row whose column is null
                # is in `not: {name: {eq: "x"}}` (SQL's NOT would keep NULL, i.e. leave the row out).
                inner = exp.paren(self.condition(value) or exp.true(), copy=False)
                parts.append(exp.not_(exp.Coalesce(this=inner, expressions=[exp.false()])))
            else:
                column = self.inputs.filter_columns[key]
                self.used[column.name] = column
                parts.extend(self._comparisons(column, value))
        return _conjunction(parts) if parts else None

    def _comparisons(self, column: Column, operators: Mapping[str, Any]) -> list[exp.Expr]:
        conditions: list[exp.Expr] = []
        for operator, value in operators.items():
            if operator == "isNull":
                flag = self.provenance.plain(value)
                if flag is None:
                    continue
                is_null = exp.Is(this=column_ref(column, self.alias), expression=exp.null())
                conditions.append(is_null if flag else exp.not_(is_null))
            elif operator == "in":
                slot = value_slot(value, self.provenance, column.type, list_length_check(self.max_in))
                name = self.parameters.add(ParameterSpec(column.type, is_list=True), slot)
                conditions.append(key_set(comparable(column, self.alias), name))
            elif operator == "like":
                slot = value_slot(value, self.provenance, column.type, like_pattern_check)
                pattern = self.parameters.placeholder(ParameterSpec(column.type), slot)
                like = exp.Like(this=comparable(column, self.alias), expression=pattern)
                conditions.append(exp.Escape(this=like, expression=exp.Literal.string("\\")))
            else:
                slot = value_slot(value, self.provenance, column.type)
                target = self.parameters.placeholder(ParameterSpec(column.type), slot)
                conditions.append(_BINARY_OPERATORS[operator](this=comparable(column, self.alias), expression=target))
        return conditions


def like_pattern_check(pattern: Any) -> Any:
    """A pattern may not end with the escape character: engines disagree on what that means."""
    if isinstance(pattern, str) and (len(pattern) - len(pattern.rstrip("\\"))) % 2 == 1:
        raise BadUserInputError("a like pattern cannot end with the escape character \\")
    return pattern


def _conjunction(parts: list[exp.Expr]) -> exp.Expr:
    if not parts:
        return exp.true()
    if len(parts) == 1:
        return parts[0]
    return exp.paren(exp.and_(*parts), copy=False)


def ordering(
    order_by: Any,
    table: Table,
    inputs: TableInputs,
    alias: str,
    provenance: Provenance,
    used: dict[str, Column] | None = None,
    tie_breakers: list[exp.Expr] | None = None,
) -> list[exp.Ordered]:
    """Sort keys for ``orderBy``, then ties broken by the primary key, ascending (or by ``tie_breakers``:
    a hidden keyed hash of it, when the caller may not sort by the key itself).

    Columns the caller sorts on are added to ``used``.
    """
    items = provenance.plain(order_by) or []
    keys: list[exp.Ordered] = []
    sorted_on: set[str] = set()
    for item in items:
        chosen = [(name, direction) for name, direction in item.items() if direction is not None]
        if len(chosen) != 1:
            raise BadUserInputError("each orderBy item must set exactly one field")
        name, direction = chosen[0]
        column = inputs.order_columns[name]
        if used is not None:
            used[column.name] = column
        descending = direction == "DESC"
        keys.append(exp.Ordered(this=comparable(column, alias), desc=descending, nulls_first=descending))
        sorted_on.add(column.name)
    if tie_breakers is not None:
        keys.extend(exp.Ordered(this=key, desc=False, nulls_first=False) for key in tie_breakers)
        return keys
    for name in table.primary_key:
        if name not in sorted_on:
            keys.append(exp.Ordered(this=comparable(table.column(name), alias), desc=False, nulls_first=False))
    return keys
