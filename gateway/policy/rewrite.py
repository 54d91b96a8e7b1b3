"""Enforcing policy inside the SQL each department runs: table references become policy subqueries.

Every reference to a protected table in a statement is replaced by::

    (SELECT <each column the statement uses, masked> FROM t AS t WHERE <row filters>) AS t

so the caller's filters, ordering, relationship keys and pagination all operate on what the caller
may see and nothing else. With several grants on the table:

* a row is visible if *any* grant's filter admits it (``WHERE f1 OR f2``);
* each cell shows the least-masked value among the grants that admit the row and include the column
  (``CASE WHEN f1 THEN c WHEN f2 THEN mask(c) ELSE NULL END``), and null where none does.

Principal attributes and key material are bound parameters; the secret keys never appear in SQL
text or in ``explain`` output. A table whose grants filter nothing and mask nothing is left as it is.
The audit's subject columns (``_fedgate_subject_<column>``) read the stored value of an identifier on the
rows the filters admit: whom each row is about, recorded and never returned to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from adapters.base import ParameterSpec
from adapters.canonical import HmacSha256Hex, TypedNull
from gateway.plan.nodes import SUBJECT_PREFIX, Const
from gateway.planning.filters import Parameters
from gateway.planning.statements import table_ref
from gateway.policy.access import Access, CompiledGrant, TableAccess
from gateway.policy.expressions import attribute_type, compared_column, convert_attribute
from gateway.policy.masks import Mask
from gateway.policy.secrets import hmac_pads
from schema.catalog import Table
from schema.types import ColumnType

#: A hidden ordering key (a keyed hash of the primary key) exposed when the caller cannot sort by the key itself.
ROW_KEY = "_fedgate_row_key"


@dataclass
class TablePolicy:
    """The grants on one table as they apply to one principal, ready to rewrite statements."""

    department: str
    table: Table
    access: Access
    grants: tuple[CompiledGrant, ...]
    row_key_secret: bytes

    @classmethod
    def for_table(cls, access: Access, department: str, table: Table, row_key_secret: bytes) -> TablePolicy | None:
        """``None`` when nothing needs enforcing in SQL: no policy, or grants that neither filter nor mask
        and show the primary key (ordering by a key the caller cannot read would reveal its order)."""
        table_access: TableAccess = access.table(department, table.name)
        grants = table_access.grants
        if access.unrestricted:
            return None
        policy = cls(department, table, access, grants, row_key_secret)
        plain = all(grant.row_filter is None and not grant.masks for grant in grants)
        if plain and all(policy.shows_plainly(name) for name in table.primary_key):
            return None
        return policy

    def uniform(self, column: str) -> tuple[bool, Mask | None]:
        """``(True, mask)`` when every grant shows ``column`` the same way (``mask`` None: unmasked).

        Every visible row is admitted by some grant, so the statement's WHERE already decides the row and
        the cell needs no per-row choice between grants.
        """
        masks = {grant.masks.get(column) for grant in self.grants if column in grant.columns}
        covered = all(column in grant.columns for grant in self.grants)
        return (covered and len(masks) == 1), (next(iter(masks)) if len(masks) == 1 else None)

    def shows_plainly(self, column: str) -> bool:
        """True when the caller sees the stored value of ``column`` on every visible row."""
        return column in self.access.table(self.department, self.table.name).plain

    def protect(self, statement: exp.Select, alias: str, parameters: Parameters) -> exp.Select:
        """``statement`` with every reference to the table (as ``alias``) replaced by its policy subquery."""
        used = sorted(
            {column.name for column in statement.find_all(exp.Column) if column.table == alias},
            key=lambda name: (name == ROW_KEY, name),
        )
        binder = _Binder(self, alias, parameters)
        projection = [exp.alias_(self._cell(name, alias, binder), name, quoted=True) for name in used]
        inner = exp.select(*projection).from_(table_ref(self.table, alias))
        admitted = binder.any_grant()
        if admitted is not None:
            inner = inner.where(admitted)
        for node in list(statement.find_all(exp.Table)):
            if node.name == self.table.name and node.alias == alias:
                node.replace(
                    exp.Subquery(this=inner.copy(), alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
                )
        return statement

    def _cell(self, name: str, alias: str, binder: _Binder) -> exp.Expr:
        if name == ROW_KEY:
            return binder.row_key()
        if name.startswith(SUBJECT_PREFIX):  # the audit's record of whom the row is about: the stored value
            return exp.column(name.removeprefix(SUBJECT_PREFIX), table=alias, quoted=True)
        column = self.table.column(name)
        value = exp.column(name, table=alias, quoted=True)
        same, mask = self.uniform(name)
        if same:
            return value if mask is None else mask.apply(value, column, alias, binder)
        if self.shows_plainly(name):
            return value
        branches = sorted(
            (grant for grant in self.grants if name in grant.columns),
            key=lambda grant: grant.masks[name].rank if name in grant.masks else 0,
        )
        case = exp.Case(ifs=[])
        for grant in branches:
            shown = (
                grant.masks[name].apply(value.copy(), column, alias, binder) if name in grant.masks else value.copy()
            )
            condition = binder.condition(grant)
            if condition is None:  # this grant admits every row: later branches can never apply
                return shown if not case.args["ifs"] else case.else_(shown)
            case = case.when(condition, shown)
        return case.else_(TypedNull(kind=column.type.value)) if case.args["ifs"] else TypedNull(kind=column.type.value)


class _Binder:
    """Binds principal attributes and keys as parameters of the statement being rewritten."""

    def __init__(self, policy: TablePolicy, alias: str, parameters: Parameters) -> None:
        self.policy = policy
        self.alias = alias
        self.parameters = parameters
        self._pseudonym: tuple[exp.Expr, exp.Expr] | None = None

    def condition(self, grant: CompiledGrant) -> exp.Expr | None:
        if grant.row_filter is None:
            return None
        return exp.paren(grant.row_filter.bind(self.alias, self._attribute), copy=False)

    def any_grant(self) -> exp.Expr | None:
        """Rows any grant admits (``None``: all rows)."""
        conditions = []
        for grant in self.policy.grants:
            condition = self.condition(grant)
            if condition is None:
                return None
            conditions.append(condition)
        return exp.or_(*conditions) if conditions else exp.false()

    def _attribute(self, name: str, node: exp.Placeholder) -> exp.Expr:
        compared = compared_column(node)
        column_type = attribute_type(compared, self.policy.table)
        raw = self.policy.access.attributes.get(name)
        in_list = isinstance(node.parent, exp.In)
        value = convert_attribute(raw, column_type)
        if in_list:
            values = value if isinstance(value, list) else ([] if value is None else [value])
            return self.parameters.placeholder(
                ParameterSpec(column_type, is_list=True), Const(values), origin=f"principal.{name}"
            )
        scalar = None if isinstance(value, list) else value  # a list where one value is expected matches nothing
        return self.parameters.placeholder(ParameterSpec(column_type), Const(scalar), origin=f"principal.{name}")

    def _keyed(self, key: bytes, origin: str) -> tuple[exp.Expr, exp.Expr]:
        inner, outer = hmac_pads(key)
        binary = ParameterSpec(ColumnType.STRING, binary=True)
        return (
            self.parameters.placeholder(binary, Const(inner), origin=f"{origin} (hidden)"),
            self.parameters.placeholder(binary, Const(outer), origin=f"{origin} (hidden)"),
        )

    def pseudonym_key(self) -> tuple[exp.Expr, exp.Expr]:
        key = self.policy.access.pseudonym_key
        if key is None:  # no recipient to derive a key for: show nothing rather than a linkable value
            null = exp.null()
            return null, null.copy()
        if self._pseudonym is None:
            self._pseudonym = self._keyed(key, "the recipient's pseudonym key")
        inner, outer = self._pseudonym
        return inner.copy(), outer.copy()

    def row_key(self) -> exp.Expr:
        """A keyed hash of the primary key: a stable order that reveals nothing about the key."""
        table = self.policy.table
        parts: list[exp.Expr] = [exp.column(name, table=self.alias, quoted=True) for name in table.primary_key]
        value: exp.Expr = parts[0] if len(parts) == 1 else exp.Concat(expressions=_separated(parts))
        inner, outer = self._keyed(self.policy.row_key_secret, "the row-order key")
        return HmacSha256Hex(this=value, inner=inner, outer=outer)


def _separated(parts: list[exp.Expr]) -> list[exp.Expr]:
    separated: list[exp.Expr] = []
    for index, part in enumerate(parts):
        if index:
            separated.append(exp.Literal.string("|"))
        separated.append(exp.Cast(this=part, to=exp.DataType.build("TEXT")))
    return separated
