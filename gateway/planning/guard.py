"""Field-by-field enforcement while planning, for schemas that show more than the caller may read.

With ``policy.schema_visibility: scoped`` (the default) a caller's schema holds only what they may
query, so validation has already refused anything else and the guard passes everything. With
``full`` visibility the guard checks each field the query touches: output columns, relationships
(their join columns at both ends, and relationships a table may only be reached through), look-up
keys, and the columns of filters and sort keys.

A forbidden *output* field is either refused (``forbidden_fields: reject``, the default: the whole
query fails with ``FORBIDDEN_FIELD``) or answered with null and a ``FORBIDDEN_COLUMN`` error at its
path (``null``), so frontline apps degrade gracefully. So is a list or look-up field on a table outside
the grants, or one in which every selected field is forbidden: it is null, and its source is not asked
(a statement reading nothing is not a statement; counting rows of an ungranted table would reveal them).
Filters and sort keys on forbidden columns are always refused: ignoring them would change the answer's
meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gateway.policy.access import Access
from schema.catalog import Column, Department, Relationship, Table

ForbiddenMode = Literal["reject", "null"]


@dataclass
class FieldGuard:
    """Collects what a query asks for beyond the caller's grants."""

    access: Access | None
    mode: ForbiddenMode = "reject"
    #: ``Type.field`` coordinates that make the query fail.
    refused: set[str] = field(default_factory=set)

    def readable(self, department: Department, table: Table, column: Column) -> bool:
        return self.access is None or self.access.can_read(department.name, table.name, column.name)

    def output(self, department: Department, table: Table, columns: list[Column], coordinate: str) -> bool:
        """May the field be answered? False means: answer null (null mode); refused fields are recorded."""
        if all(self.readable(department, table, column) for column in columns):
            return True
        if self.mode == "reject":
            self.refused.add(coordinate)
        return False

    def condition(self, department: Department, table: Table, column: Column, coordinate: str) -> None:
        """A filter or sort key: refused unless readable, in every mode."""
        if not self.readable(department, table, column):
            self.refused.add(coordinate)

    def root(self, department: Department, table: Table, coordinate: str) -> bool:
        """May this list or look-up field be asked at all? Not for a table the caller has no grant on, nor
        for one reachable only through relationships. False means: answer null (null mode)."""
        if self.access is None:
            return True
        granted = self.access.table(department.name, table.name)
        if granted.columns and granted.via is None:
            return True
        if self.mode == "reject":
            self.refused.add(coordinate)
        return False

    def through(self, department: Department, table: Table, relationship: Relationship, coordinate: str) -> bool:
        """May this relationship be followed into its target?"""
        if self.access is None:
            return True
        target_department, target_table = relationship.target.split(".", 1)
        via = self.access.table(target_department, target_table).via
        if via is None or f"{department.name}.{table.name}.{relationship.name}" in via:
            return True
        if self.mode == "reject":
            self.refused.add(coordinate)
        return False
