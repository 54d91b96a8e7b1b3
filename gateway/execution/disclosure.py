"""What one answer disclosed, for the audit: the rows and columns each table gave the caller, and whom
they are about.

While a plan runs, every response object made from a statement's row is noted with that statement's
table, the columns it shows and the stored identifiers the row carries
(:attr:`~gateway.plan.nodes.ScanNode.subjects`); a merged person is noted with its key and every
identifier of its link rows, and with each member row a merged field took its value from. Only the
objects that end up in the answer count: :meth:`Disclosure.summary` walks the answer once, so a record
fetched but not returned (the second record of a ``one`` member, a row sliced off a page) is not
recorded as disclosed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.plan.nodes import ScanNode

TableKey = tuple[str, str]
#: An identifier of a person: (identifier kind, value).
Subject = tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Note:
    """An object shows ``columns`` of one row of ``table`` (``row``: the row's identity, so a row shown by
    several objects counts once), about ``subjects``."""

    table: TableKey
    row: int
    columns: tuple[str, ...]
    subjects: tuple[Subject, ...]


@dataclass
class DisclosureSummary:
    """Per table, the rows returned and the columns shown; the people they are about, by identifier kind."""

    rows: dict[TableKey, int] = field(default_factory=dict)
    columns: dict[TableKey, set[str]] = field(default_factory=dict)
    subjects: dict[str, set[str]] = field(default_factory=dict)


class Disclosure:
    """The objects of one run of a plan that came from rows, with what each shows and whom it is about."""

    def __init__(self) -> None:
        self._noted: dict[int, list[_Note]] = {}
        self._columns: dict[int, tuple[str, ...]] = {}

    def note_rows(self, objects: Sequence[dict[str, Any]], scan: ScanNode, rows: Iterable[tuple[Any, ...]]) -> None:
        """Each of ``objects`` was made from the row of ``rows`` at its position."""
        table = _table(scan)
        columns = self._columns.get(id(scan))
        if columns is None:
            names = scan.query.columns
            columns = tuple(names[output.index].name for output in scan.fields if output.kind == "column")
            self._columns[id(scan)] = columns
        for obj, row in zip(objects, rows, strict=True):
            self._noted.setdefault(id(obj), []).append(_Note(table, id(row), columns, _subjects(scan, row)))

    def note(
        self,
        obj: dict[str, Any],
        scan: ScanNode,
        rows: Sequence[tuple[Any, ...]],
        subjects: Iterable[Subject],
        columns: tuple[str, ...] = (),
    ) -> None:
        """``obj`` stands for ``rows`` of ``scan``, about ``subjects``, showing ``columns`` of them (a merged
        person: its link rows and its key)."""
        notes = self._noted.setdefault(id(obj), [])
        people = tuple(subjects)
        for row in rows:
            notes.append(_Note(_table(scan), id(row), columns, people))

    def note_value(self, obj: dict[str, Any], scan: ScanNode, row: tuple[Any, ...], index: int) -> None:
        """``obj`` shows the value at ``index`` of ``row``, a row of ``scan`` (a merged field)."""
        note = _Note(_table(scan), id(row), (scan.query.columns[index].name,), _subjects(scan, row))
        self._noted.setdefault(id(obj), []).append(note)

    def summary(self, data: Any) -> DisclosureSummary:
        """What the answer ``data`` holds: each noted object reachable in it, each row once."""
        summary = DisclosureSummary()
        seen: set[int] = set()
        rows: set[tuple[TableKey, int]] = set()
        pending = [data]
        while pending:
            value = pending.pop()
            if isinstance(value, dict):
                if id(value) in seen:
                    continue
                seen.add(id(value))
                for note in self._noted.get(id(value), ()):
                    if (note.table, note.row) not in rows:
                        rows.add((note.table, note.row))
                        summary.rows[note.table] = summary.rows.get(note.table, 0) + 1
                    summary.columns.setdefault(note.table, set()).update(note.columns)
                    for kind, identifier in note.subjects:
                        summary.subjects.setdefault(kind, set()).add(identifier)
                pending.extend(value.values())
            elif isinstance(value, list):
                pending.extend(value)
        return summary


def _table(scan: ScanNode) -> TableKey:
    return (scan.department.name, scan.table.name)


def _subjects(scan: ScanNode, row: tuple[Any, ...]) -> tuple[Subject, ...]:
    return tuple((subject.kind, str(row[subject.index])) for subject in scan.subjects if row[subject.index] is not None)
