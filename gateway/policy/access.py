"""What one principal may read: the access model every later stage reads.

:class:`Access` holds, per table, the readable columns and the grants that apply (each a
:class:`CompiledGrant`: a scope's grant, or a scope's grant as an agreement covers it), plus the principal's
attribute values those grants use and the recipient's pseudonym key. Its ``key`` covers everything that
shapes an answer, so two callers with different rights never share a plan; its ``visibility_key`` covers
what shapes the schema. :class:`~gateway.policy.store.Policy` makes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.policy.expressions import PolicyExpression
from gateway.policy.masks import Mask
from schema.catalog import Catalog, Table

TableKey = tuple[str, str]


@dataclass(frozen=True)
class CompiledGrant:
    """A grant with its row filter and masks parsed and checked."""

    scope: str
    department: str
    table: Table
    columns: frozenset[str]
    row_filter: PolicyExpression | None = None
    masks: Mapping[str, Mask] = field(default_factory=dict)
    via: frozenset[str] = frozenset()
    #: The agreement (id, version) this grant is covered by, when agreements apply.
    agreement: tuple[str, int] | None = None

    def describe(self) -> str:
        parts = [f"{self.scope} on {self.department}.{self.table.name}"]
        if self.agreement is not None:
            parts[0] += f" under {self.agreement[0]} v{self.agreement[1]}"
        if self.row_filter is not None:
            parts.append(f"rows where {self.row_filter.text}")
        if self.masks:
            parts.append("masks " + ", ".join(f"{name}={mask.describe()}" for name, mask in sorted(self.masks.items())))
        if self.via:
            parts.append("reachable only through " + ", ".join(sorted(self.via)))
        if len(parts) == 1:
            parts.append("all rows, unmasked")
        return "; ".join(parts)


@dataclass(frozen=True)
class TableAccess:
    """What one principal may read of one table."""

    columns: frozenset[str]
    grants: tuple[CompiledGrant, ...] = ()
    #: ``None``: the table may be queried at the root; else only through these relationships.
    via: frozenset[str] | None = None
    #: The readable columns whose stored value is shown on every visible row (no grant masks them, or
    #: a grant admitting every row shows them unmasked). Only these can link records across departments.
    plain: frozenset[str] = frozenset()


def plain_columns(grants: Iterable[CompiledGrant]) -> frozenset[str]:
    """Columns every visible row shows unmasked, given the grants on one table."""
    grants = tuple(grants)
    columns = frozenset().union(*(grant.columns for grant in grants)) if grants else frozenset()
    return frozenset(
        name
        for name in columns
        if all(name in grant.columns and name not in grant.masks for grant in grants)
        or any(grant.row_filter is None and name in grant.columns and name not in grant.masks for grant in grants)
    )


@dataclass(frozen=True)
class Access:
    """What one principal may read, and what enforcing it needs."""

    tables: Mapping[TableKey, TableAccess]
    scopes: frozenset[str] = frozenset()
    #: Values of the principal attributes the grants' filters use.
    attributes: Mapping[str, Any] = field(default_factory=dict)
    pseudonym_key: bytes | None = None
    #: No policy at all (authentication switched off): nothing is rewritten.
    unrestricted: bool = False
    key: str = ""
    visibility_key: str = ""
    #: The purpose the access is for, with agreements (``None``: scopes alone decide).
    purpose: str | None = None
    #: Tables the caller's scopes grant that no agreement in force covers for the purpose.
    uncovered: frozenset[TableKey] = frozenset()

    @property
    def is_empty(self) -> bool:
        return not any(table.columns for table in self.tables.values())

    def table(self, department: str, table: str) -> TableAccess:
        return self.tables.get((department, table), TableAccess(frozenset()))

    def can_read(self, department: str, table: str, column: str) -> bool:
        return column in self.table(department, table).columns

    def columns(self) -> dict[TableKey, frozenset[str]]:
        return {key: table.columns for key, table in self.tables.items()}

    def plain(self) -> dict[TableKey, frozenset[str]]:
        return {key: table.plain for key, table in self.tables.items()}

    def via_only(self) -> dict[TableKey, frozenset[str]]:
        return {key: table.via for key, table in self.tables.items() if table.via is not None}


def digest(value: Any) -> str:
    """A short, stable digest of a JSON-able value (for cache keys)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:24]


def hashable_value(value: Any) -> Hashable:
    """A claim value (JSON: objects, arrays, scalars) as a hashable cache key."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(key), hashable_value(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return ("list", *(hashable_value(item) for item in value))
    return (type(value).__name__, value)


def full_access(catalog: Catalog) -> Access:
    """Everything in the catalog, unrewritten (authentication switched off: development only)."""
    tables = {
        (department.name, table.name): TableAccess(
            frozenset(column.name for column in table.columns), plain=frozenset(column.name for column in table.columns)
        )
        for department in catalog.departments
        for table in department.tables
    }
    return Access(tables, unrestricted=True, key="unrestricted", visibility_key="all")
