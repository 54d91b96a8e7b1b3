"""Planning the keys phase of an entity root field: which people ``person``/``people``/``peopleCount`` ask for.

See :mod:`gateway.roots.entity.plan` for the phases. A ``where`` becomes a :class:`KeyCondition`:
each member condition a semi-join step (:class:`KeyStep`), the parts of an ``and`` ordered most
selective first by :mod:`gateway.planning.estimates`, a member joined by another identifier reached
through confident link rows (:class:`Translation`). The key-phase statements (steps, translations, the
page of keys, the candidates the link table holds, the count) are planned here; the objects' shape by
:mod:`gateway.roots.entity.build`. Every statement goes through the caller's policy in the protect pass
(:mod:`gateway.pipeline.protect`), and a member is joined only as :func:`member_allowed` says.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlglot import exp

from adapters.base import OutputColumn, ParameterSpec, SourceQuery
from adapters.canonical import key_set
from gateway.errors import BadUserInputError
from gateway.plan.nodes import Const, Page, ParentKeys, ScanNode
from gateway.planning.arguments import Var
from gateway.planning.context import PlanningContext, PlanPolicy
from gateway.planning.estimates import selectivity, table_rows
from gateway.planning.filters import FilterCompiler, Parameters, column_ref, comparable, value_slot
from gateway.planning.statements import table_ref
from gateway.roots.entity.plan import KeyAll, KeyAny, KeyCondition, KeyStep, KeyValues, Translation
from schema.catalog import Column, Department, Table
from schema.entities import ResolvedEntity, ResolvedMember
from schema.types import ColumnType

_INTEGER = ParameterSpec(ColumnType.INTEGER)


def member_allowed(policy: PlanPolicy | None, entity: ResolvedEntity, member: ResolvedMember) -> bool:
    """Joining is allowed on columns the caller reads unmasked, in tables it may query directly."""
    if policy is None or policy.access.unrestricted:
        return True
    access = policy.access
    link = access.table(entity.link_department.name, entity.link_table.name)
    table = access.table(member.department.name, member.table.name)
    if table.via is not None or member.column.name not in table.plain:
        return False
    if member.link_column is None:
        return True
    score = entity.score_column
    return member.link_column.name in link.plain and (score is None or score.name in link.plain)


class KeyPlanner:
    """Plans the key conditions and key-phase statements of one entity root field."""

    def __init__(self, planning: PlanningContext, entity: ResolvedEntity) -> None:
        self.planning = planning
        self.entity = entity
        #: Link column name → translation, planned once per identifier the conditions go through.
        self.translations: dict[str, Translation] = {}

    def key_check(self, is_list: bool) -> Callable[[Any], Any]:
        """Refuse keys that cannot be identifiers of the key's kind (a clearer answer than 'no such person')."""
        kinds = {kind.name: kind for kind in self.planning.schema.catalog.identifiers}
        pattern = kinds[self.entity.entity.key].pattern
        name = self.entity.key_column.graphql_name
        limit = self.planning.limits.max_in_list

        def check(value: Any) -> Any:
            values = value if is_list else [value]
            if is_list and values is not None and len(values) > limit:
                raise BadUserInputError(f"at most {limit} values of {name} may be given")
            for item in values or ():
                if pattern is not None and isinstance(item, str) and not re.fullmatch(pattern, item):
                    raise BadUserInputError(f"'{name}' values must match {pattern}")
            return value

        return check

    # --- key conditions ------------------------------------------------------------------------------

    def condition(self, where: Any, *, pushed: bool) -> KeyCondition | None:
        """The key condition of a ``where`` argument, its ``and`` parts ordered most selective first."""
        provenance = self.planning.provenance
        where = provenance.plain(where) if isinstance(where, Var) else where
        if not where:
            return None
        parts: list[tuple[float, Any]] = []  # (estimate, where of one part)
        key_name = self.entity.key_column.graphql_name
        for name, value in where.items():
            if isinstance(value, Var):
                value = provenance.plain(value)
            if value is None:
                continue
            if name == key_name:
                for operator, operand in value.items():
                    if operand is not None or isinstance(operand, Var):
                        parts.append((-1.0, ("key", operator, operand)))
            elif name in ("and", "or"):
                items = [provenance.plain(item) if isinstance(item, Var) else item for item in value]
                parts.append((self._estimate(name, items), (name, items)))
            else:
                member = self._member_by_field(name)
                parts.append((self._step_estimate(member, value), ("member", member, value)))
        parts.sort(key=lambda part: part[0])
        built = [self._part(part, pushed=pushed or index > 0) for index, (_, part) in enumerate(parts)]
        conditions = [condition for condition in built if condition is not None]
        if not conditions:
            return None
        return conditions[0] if len(conditions) == 1 else KeyAll(tuple(conditions))

    def _part(self, part: tuple[Any, ...], *, pushed: bool) -> KeyCondition | None:
        kind = part[0]
        if kind == "key":
            _, operator, operand = part
            is_list = operator == "in"
            key_type = self.entity.key_column.type
            slot = value_slot(operand, self.planning.provenance, key_type, self.key_check(is_list))
            return KeyValues(slot, is_list)
        if kind == "member":
            _, member, where = part
            return self._step(member, where, pushed=pushed)
        _, items = part
        children = [self.condition(item, pushed=pushed) for item in items]
        kept = tuple(child for child in children if child is not None)
        if kind == "and":
            return KeyAll(kept) if kept else None
        if len(kept) < len(children):  # an empty branch of an 'or' holds for everyone: no condition
            return None
        return KeyAny(kept)

    def _member_by_field(self, field_name: str) -> ResolvedMember:
        member = next((m for m in self.entity.members.values() if m.member.graphql_name == field_name), None)
        assert member is not None, field_name
        if not member_allowed(self.planning.policy, self.entity, member):
            self.planning.guard.refused.add(f"{self.entity.entity.graphql_type}Filter.{field_name}")
        return member

    def _step_estimate(self, member: ResolvedMember, where: Any) -> float:
        rows = table_rows(self.planning.statistics, member.department.name, member.table)
        inputs = self.planning.schema.table_inputs(member.department.name, member.table.name)
        return rows * selectivity(where, member.table, rows, inputs.filter_columns)

    def _estimate(self, kind: str, items: list[Any]) -> float:
        estimates = [self._estimate_where(item) for item in items]
        if not estimates:
            return float("inf")
        return min(estimates) if kind == "and" else sum(estimates)

    def _estimate_where(self, where: Any) -> float:
        key_name = self.entity.key_column.graphql_name
        estimates = []
        for name, value in (where or {}).items():
            if value is None:
                continue
            if name == key_name:
                estimates.append(-1.0)
            elif name in ("and", "or"):
                estimates.append(self._estimate(name, list(value)))
            else:
                estimates.append(self._step_estimate(self._member_by_field(name), value))
        return min(estimates) if estimates else float("inf")

    def _step(self, member: ResolvedMember, where: Any, *, pushed: bool) -> KeyStep:
        if member.link_column is not None:
            self._translation(member.link_column)
        node = self.key_scan(
            member.department, member.table, [member.column], keys=member.column if pushed else None, where=where
        )
        description = (
            f"{member.member.table} matching {self.entity.entity.graphql_type}Filter.{member.member.graphql_name}"
        )
        return KeyStep(member, node, pushed, self._step_estimate(member, where), description)

    def _translation(self, link_column: Column) -> Translation:
        """Confident link rows between the key and ``link_column`` (planned once per identifier)."""
        existing = self.translations.get(link_column.name)
        if existing is not None:
            return existing
        entity = self.entity
        outputs = [entity.key_column, link_column]
        department, table = entity.link_department, entity.link_table
        translation = Translation(
            from_keys=self.key_scan(department, table, outputs, keys=entity.key_column, confident=True, group=False),
            to_keys=self.key_scan(department, table, outputs, keys=link_column, confident=True, group=False),
        )
        self.translations[link_column.name] = translation
        return translation

    # --- statements of the key phase ------------------------------------------------------------------

    def key_scan(
        self,
        department: Department,
        table: Table,
        outputs: list[Column],
        *,
        keys: Column | None = None,
        where: Any = None,
        page: Page | None = None,
        confident: bool = False,
        group: bool = True,
    ) -> ScanNode:
        """``SELECT outputs FROM table WHERE [keys IN :keys] [where] [confident] GROUP BY outputs [page]``."""
        planning = self.planning
        parameters = Parameters()
        alias = table.name
        conditions: list[exp.Expr] = []
        keys_parameter = None
        if keys is not None:
            keys_parameter = parameters.add(ParameterSpec(keys.type, is_list=True), ParentKeys())
            conditions.append(key_set(comparable(keys, alias), keys_parameter))
        if where is not None:
            inputs = planning.schema.table_inputs(department.name, table.name)
            filters = FilterCompiler(table, inputs, alias, parameters, planning.provenance, planning.limits.max_in_list)
            condition = filters.condition(where)
            if condition is not None:
                conditions.append(condition)
            for column in filters.used.values():
                coordinate = f"{department.type_name(table)}.{column.graphql_name}"
                planning.guard.condition(department, table, column, coordinate)
        for column in outputs[1:] if confident else ():
            conditions.append(exp.not_(exp.Is(this=column_ref(column, alias), expression=exp.null())))
        score = self.entity.score_column
        if confident and score is not None:
            threshold = parameters.placeholder(ParameterSpec(score.type), Const(self._threshold(score)))
            conditions.append(exp.GTE(this=column_ref(score, alias), expression=threshold))
        select = exp.select(*(column_ref(column, alias) for column in outputs)).from_(table_ref(table, alias))
        if conditions:
            select = select.where(*conditions)
        if group:
            select = select.group_by(*(column_ref(column, alias) for column in outputs))
        if page is not None:
            select = select.order_by(exp.Ordered(this=comparable(outputs[0], alias), desc=False, nulls_first=False))
            select = select.limit(parameters.placeholder(_INTEGER, page.limit))
            select = select.offset(parameters.placeholder(_INTEGER, page.offset))
        query = SourceQuery(
            department.name, select, tuple(OutputColumn(c.name, c.type) for c in outputs), parameters.specs()
        )
        key_index = outputs.index(keys) if keys is not None else None
        return ScanNode(
            department, table, "", query, dict(parameters.items), (), key_index=key_index,
            keys_parameter=keys_parameter, page=page,
        )  # fmt: skip

    def _threshold(self, score: Column) -> Any:
        threshold = self.entity.entity.link.threshold
        return Decimal(str(threshold)) if score.type is ColumnType.DECIMAL else threshold

    def count_scan(self) -> ScanNode:
        entity = self.entity
        department, table = entity.link_department, entity.link_table
        parameters = Parameters()
        alias = table.name
        count = exp.Count(this=exp.Distinct(expressions=[column_ref(entity.key_column, alias)]))
        select = exp.select(exp.alias_(count, "count", quoted=True)).from_(table_ref(table, alias))
        query = SourceQuery(department.name, select, (OutputColumn("count", ColumnType.INTEGER),), parameters.specs())
        return ScanNode(department, table, "", query, dict(parameters.items), ())
