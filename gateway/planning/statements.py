"""Building one canonical ``SELECT`` per scan.

Three shapes, all dialect-neutral (rendering is the adapter's job):

* a root page: ``SELECT cols FROM t WHERE cond ORDER BY keys LIMIT :limit OFFSET :offset``;
* a look-up: ``SELECT cols FROM t WHERE pk = :p``;
* a batched child level: ``SELECT cols FROM t WHERE key IN :keys AND cond``. When each parent gets its own
  page (``hospitalSpells(limit: 5)``) and the source has window functions, the page is computed by the
  source: ``ROW_NUMBER() OVER (PARTITION BY key ORDER BY keys)`` filtered to ``offset < rn <= offset +
  limit``; otherwise the rows come back ordered and the executor slices each parent's group.

Either way it is one statement per child field per nesting level, never one per parent row.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from adapters.base import OutputColumn, ParameterSpec, SourceQuery
from adapters.canonical import key_set
from gateway.plan.nodes import Page, PageEnd, ParentKeys
from gateway.planning.filters import Parameters, column_ref, comparable
from schema.catalog import Column, Department, Table
from schema.types import ColumnType

ROW_NUMBER = "_fedgate_rn"
PAGE_ALIAS = "_fedgate_page"
_INTEGER = ParameterSpec(ColumnType.INTEGER)


@dataclass
class ScanRequest:
    """What the planner wants from one table, before it becomes a statement."""

    department: Department
    table: Table
    columns: list[Column]
    condition: exp.Expr | None
    order: list[exp.Ordered]
    page: Page | None
    parameters: Parameters
    #: For a batched child level: the column matched against the parent rows' keys.
    key_column: Column | None = None

    @property
    def alias(self) -> str:
        return self.table.name


@dataclass(frozen=True)
class Statement:
    query: SourceQuery
    keys_parameter: str | None
    residual_page: Page | None


def table_ref(table: Table, alias: str) -> exp.Table:
    return exp.Table(
        this=exp.to_identifier(table.name, quoted=True),
        db=exp.to_identifier(table.db_schema, quoted=True) if table.db_schema else None,
        alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)),
    )


def build_statement(request: ScanRequest, *, window_functions: bool) -> Statement:
    """The statement for ``request``; per-parent pages use a window only if the source supports one."""
    alias = request.alias
    parameters = request.parameters
    conditions: list[exp.Expr] = []
    keys_parameter = None
    if request.key_column is not None:
        spec = ParameterSpec(request.key_column.type, is_list=True)
        keys_parameter = parameters.add(spec, ParentKeys())
        conditions.append(key_set(comparable(request.key_column, alias), keys_parameter))
    if request.condition is not None:
        conditions.append(request.condition)
    select = exp.select(*(column_ref(column, alias) for column in request.columns)).from_(
        table_ref(request.table, alias)
    )
    if conditions:
        select = select.where(*conditions)
    outputs = tuple(OutputColumn(column.name, column.type) for column in request.columns)
    residual: Page | None = None
    page = request.page
    if request.key_column is None:
        if request.order:
            select = select.order_by(*request.order)
        if page is not None:
            select = select.limit(parameters.placeholder(_INTEGER, page.limit))
            select = select.offset(parameters.placeholder(_INTEGER, page.offset))
    elif page is not None and window_functions:
        select = _windowed(select, request, page)
    else:
        if request.order:
            select = select.order_by(*request.order)
        residual = page
    query = SourceQuery(request.department.name, select, outputs, parameters.specs())
    return Statement(query, keys_parameter, residual)


def _windowed(select: exp.Select, request: ScanRequest, page: Page) -> exp.Select:
    assert request.key_column is not None
    window = exp.Window(
        this=exp.RowNumber(),
        partition_by=[comparable(request.key_column, request.alias)],
        order=exp.Order(expressions=request.order),
    )
    inner = select.select(exp.alias_(window, ROW_NUMBER, quoted=True))
    row_number = exp.column(ROW_NUMBER, table=PAGE_ALIAS, quoted=True)
    first = request.parameters.placeholder(_INTEGER, page.offset)
    last = request.parameters.placeholder(_INTEGER, PageEnd(page.offset, page.limit))
    return (
        exp.select(*(exp.column(column.name, table=PAGE_ALIAS, quoted=True) for column in request.columns))
        .from_(exp.alias_(inner.subquery(), PAGE_ALIAS, quoted=True, table=True))
        .where(exp.GT(this=row_number, expression=first), exp.LTE(this=row_number.copy(), expression=last))
        .order_by(exp.Ordered(this=row_number.copy(), desc=False, nulls_first=False))
    )
