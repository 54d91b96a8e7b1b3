"""The nodes a plan is made of: statements (:class:`ScanNode`), where their values come from, and how
their rows become response objects.

Values are not part of a plan: each parameter has a :class:`Slot` that says where its value comes from
at execution (a literal of the document, a variable, or the keys of the parent rows), so one plan
serves every request that differs only in variable values. Every node is frozen: a pass that changes a
statement makes a new node (:meth:`ScanNode.map`).

A scan and the levels below it::

    ScanNode "patients"                          one statement against one department
     ├─ fields      response keys ← row columns / __typename / children
     └─ ChildEdge "hospitalSpells" ─ ScanNode    batched: WHERE key IN (...)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from adapters.base import ParameterSpec, SourceQuery
from gateway.errors import QueryLimit, QueryLimitError
from schema.catalog import Department, Table
from schema.graphql_types import PageSizes

#: A pass's change to one statement: the statement to run in its place (the same node when unchanged).
ScanChange = Callable[["ScanNode"], "ScanNode"]

#: The name under which a statement reads an identifier column's stored value for the audit
#: (``_fedgate_subject_nhs_number``): never a response field, whatever the caller may see of the column.
SUBJECT_PREFIX = "_fedgate_subject_"

# --- where a parameter's value comes from -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Const:
    """A value written in the document itself (or a structural variable's value, fixed by the plan key)."""

    value: Any

    def resolve(self, variables: Mapping[str, Any]) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class FromVariable:
    """A variable's value, read at execution; ``check`` validates or defaults it (e.g. a page size)."""

    name: str
    check: Callable[[Any], Any] | None = None

    def resolve(self, variables: Mapping[str, Any]) -> Any:
        value = variables.get(self.name)
        return self.check(value) if self.check is not None else value


@dataclass(frozen=True, slots=True)
class PageEnd:
    """``offset + limit``: the last row number of a per-parent page."""

    offset: Slot
    limit: Slot

    def resolve(self, variables: Mapping[str, Any]) -> Any:
        return self.offset.resolve(variables) + self.limit.resolve(variables)


@dataclass(frozen=True, slots=True)
class ParentKeys:
    """The distinct join-key values of the parent rows, supplied by the executor."""

    def resolve(self, variables: Mapping[str, Any]) -> Any:
        raise AssertionError("parent keys are bound by the executor")


Slot = Const | FromVariable | PageEnd | ParentKeys


@dataclass(frozen=True)
class Parameter:
    spec: ParameterSpec
    slot: Slot
    #: Where a policy value comes from (``principal.org_code``, ``pseudonym key``), for explain.
    origin: str = ""

    def describe(self) -> str:
        """Where the value comes from, never the value itself (explain shows placeholders only)."""
        if self.origin:
            return self.origin
        if isinstance(self.slot, FromVariable):
            return f"variable ${self.slot.name}"
        if isinstance(self.slot, ParentKeys):
            return "keys of the parent rows"
        if isinstance(self.slot, PageEnd):
            return "offset + limit"
        return "a value in the query"


# --- shaping ------------------------------------------------------------------------------------------

OutputFieldKind = Literal["column", "typename", "child", "forbidden"]


@dataclass(frozen=True, slots=True)
class OutputField:
    """One response key of an object: a column of the row, the type name, a child edge, or (forbidden)
    a field outside the caller's grants answered with null (``type_name`` then holds its coordinate)."""

    response_key: str
    kind: OutputFieldKind
    index: int = 0
    type_name: str = ""


@dataclass(frozen=True, slots=True)
class SubjectColumn:
    """Where a row of a statement holds the stored value of one of its table's identifier columns: the
    person the row is about, recorded by the audit and never returned to the caller."""

    index: int
    #: The identifier kind (``nhs_number``, ``nino``...) of the catalog.
    kind: str
    column: str


@dataclass(frozen=True)
class Page:
    """A page of rows: ``offset``/``limit`` slots (per parent for nested lists)."""

    limit: Slot
    offset: Slot


# --- scans --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FusedChild:
    """One child level answered by its parent's statement (:mod:`gateway.roots.fusion`): each row holds
    ``parent_width`` parent columns, the parent's row number, then ``child_width`` child columns (whose
    ``child_key_index``-th is null when the parent has no children) and, for a paged child, its row number."""

    edge_index: int
    parent_width: int
    child_width: int
    child_key_index: int

    def split(self, rows: Iterable[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], list[list[tuple[Any, ...]]]]:
        """The fused statement's rows as the parent rows and, for each of them, its child rows in order."""
        width, child_width, key = self.parent_width, self.child_width, self.child_key_index
        parents: list[tuple[Any, ...]] = []
        children: list[list[tuple[Any, ...]]] = []
        last: object = object()
        for row in rows:
            if row[width] != last:
                last = row[width]
                parents.append(row[:width])
                children.append([])
            child = row[width + 1 : width + 1 + child_width]
            if child[key] is not None:  # the key matched, so this is a child row, not the LEFT JOIN's nulls
                children[-1].append(child)
        return parents, children


@dataclass(frozen=True, eq=False)
class ScanNode:
    """One statement against one department, the shape of its objects, and its children.

    Frozen once built (passes such as fusion make new scans); compared by identity, as the plan's
    caches and the executor's per-scan values key scans by ``id``."""

    department: Department
    table: Table
    type_name: str
    query: SourceQuery
    parameters: Mapping[str, Parameter]
    fields: tuple[OutputField, ...]
    children: tuple[ChildEdge, ...] = ()
    #: Set for a batched child scan: the key column's position in this scan's rows...
    key_index: int | None = None
    #: ...and the list parameter the parent rows' keys are bound to.
    keys_parameter: str | None = None
    #: Per-parent paging the source could not do (no window functions): the executor slices groups.
    residual_page: Page | None = None
    #: The page asked for (per parent for a child scan); ``None`` for a look-up.
    page: Page | None = None
    #: The grants enforced in this statement, described (for explain).
    grants: tuple[str, ...] = ()
    #: A child level this statement answers too, so that child runs no statement of its own.
    fused: FusedChild | None = None
    #: The identifier columns' stored values each row carries for the audit (after the caller's columns).
    subjects: tuple[SubjectColumn, ...] = ()

    @cached_property
    def forbidden(self) -> tuple[OutputField, ...]:
        """The fields outside the caller's grants, answered with null and an error on every object."""
        return tuple(output for output in self.fields if output.kind == "forbidden")

    @property
    def reads_columns(self) -> bool:
        """False when every field selected is forbidden: there is nothing to ask the source for."""
        return bool(self.query.columns)

    def cost(self, variables: Mapping[str, Any], parents: int = 1) -> int:
        """Most rows this scan and its children can return: page sizes multiplied down the nesting."""
        rows = parents * (self.page.limit.resolve(variables) if self.page is not None else 1)
        return rows + sum(child.node.cost(variables, rows) for child in self.children)

    def map(self, change: ScanChange) -> ScanNode:
        """This scan with every statement below it changed by ``change``, then itself (bottom up)."""
        return change(self.with_children(change))

    def with_children(self, change: ScanChange) -> ScanNode:
        """This scan with every statement below it changed by ``change``, but not itself (a view's rows are
        its spine's, so only its children are statements)."""
        if not self.children:
            return self
        children = tuple(dataclasses.replace(edge, node=edge.node.map(change)) for edge in self.children)
        return dataclasses.replace(self, children=children)

    def walk(self) -> list[ScanNode]:
        """This statement and every statement below it (a fused child runs none: its descendants do)."""
        nodes = [self]
        for index, child in enumerate(self.children):
            below = child.node.walk()
            nodes.extend(below[1:] if self.fused is not None and index == self.fused.edge_index else below)
        return nodes


@dataclass(frozen=True)
class ChildEdge:
    """A relationship field: the child scan is run once for all parent rows of a level."""

    response_key: str
    parent_key_index: int
    many: bool
    node: ScanNode


def page_size_check(sizes: PageSizes) -> Callable[[Any], int]:
    """Validate a ``limit`` value: ``None`` means the default; negative or above the maximum is refused."""

    def check(value: Any) -> int:
        if value is None:
            return sizes.default
        if value < 0:
            raise QueryLimitError("limit must not be negative", limit=QueryLimit.PAGE_SIZE)
        if value > sizes.maximum:
            raise QueryLimitError(
                f"limit {value} exceeds the maximum page size of {sizes.maximum}", limit=QueryLimit.PAGE_SIZE
            )
        return int(value)

    return check


def offset_check(maximum: int) -> Callable[[Any], int]:
    """Validate an ``offset`` value: ``None`` means 0; negative or above ``maximum`` is refused (a deep offset
    makes the source read and discard every row before it)."""

    def check(value: Any) -> int:
        if value is None:
            return 0
        if value < 0:
            raise QueryLimitError("offset must not be negative", limit=QueryLimit.OFFSET)
        if value > maximum:
            raise QueryLimitError(f"offset {value} exceeds the maximum offset of {maximum}", limit=QueryLimit.OFFSET)
        return int(value)

    return check


def list_length_check(maximum: int) -> Callable[[Any], list[Any]]:
    def check(value: Any) -> list[Any]:
        values = [] if value is None else list(value)
        if len(values) > maximum:
            raise QueryLimitError(
                f"an 'in' list has {len(values)} values; at most {maximum} are allowed", limit=QueryLimit.IN_LIST
            )
        return values

    return check
