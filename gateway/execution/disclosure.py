"""What one answer disclosed, for the audit: the rows each table gave the caller, and whom they are about.

While a plan runs, every response object made from a statement's row is noted with that statement and
the stored identifiers the row carries (:attr:`~gateway.plan.nodes.ScanNode.subjects`); a merged person is
noted with its key and every identifier of its link rows. Only the objects that end up in the answer
count: :meth:`Disclosure.summary` walks the answer once, so a record fetched but not returned (the second
record of a ``one`` member, a row sliced off a page) is not recorded as disclosed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.plan.nodes import ScanNode

TableKey = tuple[str, str]
#: An identifier of a person: (identifier kind, value).
Subject = tuple[str, str]


@dataclass
class DisclosureSummary:
    """Rows returned per table, and the identifiers of the people they are about, by kind."""

    rows: dict[TableKey, int] = field(default_factory=dict)
    subjects: dict[str, set[str]] = field(default_factory=dict)


class Disclosure:
    """The objects of one run of a plan that came from rows, with the subjects of each."""

    def __init__(self) -> None:
        self._noted: dict[int, tuple[TableKey, tuple[Subject, ...]]] = {}

    def note(self, obj: dict[str, Any], scan: ScanNode, subjects: Iterable[Subject]) -> None:
        """``obj`` was made from a row of ``scan`` about ``subjects``."""
        self._noted[id(obj)] = ((scan.department.name, scan.table.name), tuple(subjects))

    def note_rows(self, objects: list[dict[str, Any]], scan: ScanNode, rows: Iterable[tuple[Any, ...]]) -> None:
        """Each of ``objects`` was made from the row of ``rows`` at its position."""
        key = (scan.department.name, scan.table.name)
        positions = [(subject.kind, subject.index) for subject in scan.subjects]
        for obj, row in zip(objects, rows, strict=True):
            found = tuple((kind, str(row[index])) for kind, index in positions if row[index] is not None)
            self._noted[id(obj)] = (key, found)

    def summary(self, data: Any) -> DisclosureSummary:
        """What the answer ``data`` holds: each noted object reachable in it counts once."""
        summary = DisclosureSummary()
        seen: set[int] = set()
        pending = [data]
        while pending:
            value = pending.pop()
            if isinstance(value, dict):
                if id(value) in seen:
                    continue
                seen.add(id(value))
                noted = self._noted.get(id(value))
                if noted is not None:
                    table, subjects = noted
                    summary.rows[table] = summary.rows.get(table, 0) + 1
                    for kind, identifier in subjects:
                        summary.subjects.setdefault(kind, set()).add(identifier)
                pending.extend(value.values())
            elif isinstance(value, list):
                pending.extend(value)
        return summary
