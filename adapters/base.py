"""The contract between the gateway and a department's source, in the spirit of Trino's connector SPI.

The gateway hands an adapter a :class:`SourceQuery`: a dialect-neutral sqlglot ``SELECT`` (already
rewritten by policy) whose values are placeholders, plus the types of its parameters and output
columns. The adapter declares what it can do in :class:`Capabilities`; whatever it cannot do (per-parent
pagination without window functions, later filters a REST API ignores) the gateway does itself on the
fetched rows. An adapter

* **prepares** a query once (rendering it in its dialect; the result is cached in the plan),
* **fetches** rows for a prepared query and a set of parameter values, decoding every value to the
  canonical Python type of its column (:mod:`schema.types`), within a timeout,
* maps every driver error to :class:`~adapters.errors.SourceError` subclasses at this boundary,
* reports **health** and **introspects** its tables for ``fedgate introspect``,
* and, if it keeps a pool of connections it can count, reports its **pool usage** (:meth:`SourceAdapter.pool_usage`)
  for the metrics; an adapter that cannot tell (an HTTP client's pool) leaves the default, ``None``.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import SecretStr
from sqlglot import exp

from schema.catalog import Department
from schema.types import ColumnType

#: One row as a source returned it.
Row = tuple[Any, ...]


class Capability(enum.Enum):
    """Something a source can evaluate itself. Absent means the gateway must do it."""

    #: ``ROW_NUMBER() OVER (PARTITION BY ...)``: per-parent pages of nested lists in one statement.
    WINDOW_FUNCTIONS = "window_functions"
    #: ``LEFT JOIN LATERAL``: a nested level answered by its parent's statement (one round trip).
    LATERAL_JOINS = "lateral_joins"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a source supports; ``dialect`` is the sqlglot dialect its statements are rendered in."""

    dialect: str
    features: frozenset[Capability] = frozenset()

    def supports(self, capability: Capability) -> bool:
        return capability in self.features


@dataclass(frozen=True, slots=True)
class OutputColumn:
    """A column of a query's result: its name in the ``SELECT`` list and its logical type."""

    name: str
    type: ColumnType


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """The declared type of a placeholder. ``is_list`` marks a key set (``col IN <placeholder>``);
    ``binary`` a byte string (key material for masks), passed to the driver unchanged."""

    type: ColumnType
    is_list: bool = False
    binary: bool = False


@dataclass(frozen=True)
class SourceQuery:
    """One statement for one source: a canonical ``SELECT`` plus the types of its inputs and outputs.

    Placeholders are ``exp.Placeholder(this=<name>)`` nodes; a key set is ``exp.In(this=<column>,
    expressions=[<placeholder>])`` where the placeholder's spec has ``is_list``. Values are never part
    of the tree: they arrive at :meth:`SourceAdapter.fetch` and reach the driver as bound parameters.
    """

    department: str
    select: exp.Select
    columns: tuple[OutputColumn, ...]
    parameters: Mapping[str, ParameterSpec] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FetchContext:
    """Who a fetch is for, for sources that need it: ``subject_token`` is the caller's bearer token, used
    only by a source configured for token exchange (sent to its authorisation server, never to the API)."""

    subject_token: SecretStr | None = field(default=None, repr=False)
    subject: str | None = None


NO_CONTEXT = FetchContext()


class PreparedQuery(abc.ABC):
    """A :class:`SourceQuery` rendered for one source, reusable across requests."""

    @property
    @abc.abstractmethod
    def display_sql(self) -> str:
        """The statement as the source runs it, with placeholders (never values), for ``explain``."""

    @property
    @abc.abstractmethod
    def placeholders(self) -> tuple[tuple[str, str], ...]:
        """``(placeholder as written in display_sql, parameter name)`` in the order the statement binds them."""


@dataclass(frozen=True, slots=True)
class ColumnDescription:
    """A column found by introspection, with the catalog type it maps to (``None``: unsupported type)."""

    name: str
    native_type: str
    type: ColumnType | None
    nullable: bool
    comment: str = ""


@dataclass(frozen=True, slots=True)
class ForeignKeyDescription:
    """A foreign key found by introspection; becomes a relationship in the catalog skeleton."""

    columns: tuple[str, ...]
    target_table: str
    target_columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TableDescription:
    """A table found by introspection."""

    name: str
    columns: tuple[ColumnDescription, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKeyDescription, ...] = ()
    comment: str = ""


def describe_tables(
    columns: Iterable[tuple[str, ColumnDescription]],
    primary_keys: Iterable[tuple[str, str]],
    foreign_keys: Iterable[tuple[str, str, str, str, str]],
    comments: Mapping[str, str],
) -> list[TableDescription]:
    """Assemble table descriptions from catalog-query rows, in table order.

    ``columns``: (table, column); ``primary_keys``: (table, column) in key order; ``foreign_keys``:
    (table, constraint, local column, target table, target column) in column order.
    """
    by_table: dict[str, list[ColumnDescription]] = {}
    for table, column in columns:
        by_table.setdefault(table, []).append(column)
    primary: dict[str, list[str]] = {}
    for table, name in primary_keys:
        primary.setdefault(table, []).append(name)
    foreign: dict[tuple[str, str], tuple[str, list[str], list[str]]] = {}
    for table, constraint, local, target, remote in foreign_keys:
        entry = foreign.setdefault((table, constraint), (target, [], []))
        entry[1].append(local)
        entry[2].append(remote)
    return [
        TableDescription(
            name=table,
            columns=tuple(table_columns),
            primary_key=tuple(primary.get(table, ())),
            foreign_keys=tuple(
                ForeignKeyDescription(tuple(local), target, tuple(remote))
                for (owner, _), (target, local, remote) in sorted(foreign.items())
                if owner == table
            ),
            comment=str(comments.get(table) or ""),
        )
        for table, table_columns in sorted(by_table.items())
    ]


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """A connection pool now: connections open, of which in use, and the most it may open."""

    size: int
    in_use: int
    max_size: int

    @property
    def idle(self) -> int:
        return self.size - self.in_use


class SourceAdapter(abc.ABC):
    """One department's source. Subclasses implement only what their kind supports."""

    kind: ClassVar[str]

    def __init__(self, department: Department) -> None:
        self.department = department
        self.name = department.name

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities:
        """Valid after :meth:`open` (some capabilities depend on the server's version)."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Create the connection pool; raise :class:`~adapters.errors.SourceUnavailableError` on failure."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every connection. Safe to call twice or after a failed :meth:`open`."""

    @abc.abstractmethod
    async def health(self) -> None:
        """Check the source answers a trivial query; raise a :class:`~adapters.errors.SourceError` if not."""

    @abc.abstractmethod
    async def introspect(self) -> Sequence[TableDescription]:
        """Describe the source's tables (for ``fedgate introspect``)."""

    async def table_rows(self) -> Mapping[str, int]:
        """Approximate row counts of the department's tables, for planning; ``{}`` when the source keeps none.

        Only the order of cross-department semi-joins depends on them, never an answer.
        """
        return {}

    def pool_usage(self) -> PoolUsage | None:
        """The connection pool's usage now, without I/O; ``None`` when the adapter cannot tell (the default)
        or has no pool open."""
        return None

    @abc.abstractmethod
    def prepare(self, query: SourceQuery) -> PreparedQuery:
        """Render ``query`` for this source. Pure: no I/O, safe to cache."""

    @abc.abstractmethod
    async def fetch(
        self, prepared: PreparedQuery, values: Mapping[str, Any], *, timeout: float, context: FetchContext = NO_CONTEXT
    ) -> list[Row]:
        """Run a prepared query with ``values`` bound; rows hold canonical Python values in column order.

        Raises :class:`~adapters.errors.SourceTimeoutError` after ``timeout`` seconds (the query is
        cancelled on the source), :class:`~adapters.errors.SourceUnavailableError` when the source cannot
        be reached and :class:`~adapters.errors.SourceQueryError` when it rejects the query.
        """
