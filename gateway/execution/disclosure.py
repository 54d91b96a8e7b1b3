"""What one answer disclosed, for the audit: the rows and columns each table gave the caller, and whom
they are about.

While a plan runs, every response object made from a statement's row is noted with that statement's
table, the columns it shows and the stored identifiers the row carries
(:attr:`~gateway.plan.nodes.ScanNode.subjects`); a merged person is noted with its key and every
identifier of its link rows, and with each member row a merged field took its value from. Only the
objects that end up in the answer count: :meth:`Disclosure.summary` walks the answer once, so a record
fetched but not returned (the second record of a ``one`` member, a row sliced off a page) is not
recorded as disclosed. The walk is needed only when something may have been left out: a field holding one
object given several, a merged person, a failure (:meth:`Disclosure.may_leave_out`); otherwise every
object noted is in the answer, and the walk is skipped.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.plan.nodes import ScanNode

TableKey = tuple[str, str]
#: An identifier of a person: (identifier kind, value).
Subject = tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Shown:
    """What one row of a scan shows: its ``table``, the ``columns`` it shows and, by position in the row,
    the identifiers of people it carries (kind, index)."""

    table: TableKey
    columns: tuple[str, ...]
    subjects: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, scan: ScanNode, columns: tuple[str, ...]) -> _Shown:
        return cls(_table(scan), columns, tuple((subject.kind, subject.index) for subject in scan.subjects))


@dataclass
class DisclosureSummary:
    """Per table, the rows returned and the columns shown; the people they are about, by identifier kind."""

    rows: dict[TableKey, int] = field(default_factory=dict)
    columns: dict[TableKey, set[str]] = field(default_factory=dict)
    subjects: dict[str, set[str]] = field(default_factory=dict)

    def add(self, shown: _Shown, rows: Sequence[tuple[Any, ...]], counted: dict[TableKey, set[int]]) -> None:
        """``rows``, shown as ``shown`` says (each row counted once however many objects show it)."""
        if not rows:
            return
        seen = counted.setdefault(shown.table, set())
        fresh = {id(row) for row in rows} - seen
        seen |= fresh
        self.rows[shown.table] = self.rows.get(shown.table, 0) + len(fresh)
        self.columns.setdefault(shown.table, set()).update(shown.columns)
        for kind, index in shown.subjects:
            people = {str(row[index]) for row in rows if row[index] is not None}
            self.subjects.setdefault(kind, set()).update(people)


class Disclosure:
    """The objects of one run of a plan that came from rows, with what each shows and whom it is about.

    Noting costs a list append per statement's objects; the work is done once, by :meth:`summary`, for the
    objects the answer holds."""

    def __init__(self) -> None:
        #: Objects made from rows, each with its row, as made (:meth:`note_rows`).
        self._made: list[tuple[_Shown, Sequence[dict[str, Any]], Sequence[tuple[Any, ...]]]] = []
        #: Objects that stand for rows of other objects' scans, or show one value of one (a merged person).
        self._standing: list[tuple[dict[str, Any], _Shown, Sequence[tuple[Any, ...]], tuple[Subject, ...]]] = []
        #: Whether an object noted may have been left out of the answer (then the answer is walked).
        self._partial = False

    def note_rows(self, objects: Sequence[dict[str, Any]], scan: ScanNode, rows: Sequence[tuple[Any, ...]]) -> None:
        """Each of ``objects`` was made from the row of ``rows`` at its position."""
        self._made.append((_shown_by(scan), objects, rows))

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
        self._standing.append((obj, _Shown(_table(scan), columns, ()), rows, tuple(subjects)))

    def note_value(self, obj: dict[str, Any], scan: ScanNode, row: tuple[Any, ...], index: int) -> None:
        """``obj`` shows the value at ``index`` of ``row``, a row of ``scan`` (a merged field)."""
        self._standing.append((obj, _Shown.of(scan, (scan.query.columns[index].name,)), (row,), ()))

    def may_leave_out(self) -> None:
        """Some object noted may not be in the answer: :meth:`summary` walks it."""
        self._partial = True

    def summary(self, data: Any, *, failed: bool = False) -> DisclosureSummary:
        """What the answer ``data`` holds: each noted object reachable in it, each row once (``failed``: a
        failure may have made part of it null)."""
        summary = DisclosureSummary()
        counted: dict[TableKey, set[int]] = {}
        if not (self._partial or failed or self._standing):  # every object noted is in the answer
            for shown, _, rows in self._made:
                summary.add(shown, rows, counted)
            return summary
        held = _objects(data)
        for shown, objects, rows in self._made:
            summary.add(shown, [row for obj, row in zip(objects, rows, strict=True) if id(obj) in held], counted)
        for obj, shown, rows, people in self._standing:
            if id(obj) in held:
                summary.add(shown, rows, counted)
                for kind, identifier in people:
                    summary.subjects.setdefault(kind, set()).add(identifier)
        return summary


def _objects(data: Any) -> set[int]:
    """The identities of the objects (dicts) the answer ``data`` holds, however deep (response objects are
    plain dicts, lists plain lists; only those are followed)."""
    held: set[int] = set()
    pending = [data]
    push = pending.append
    while pending:
        value = pending.pop()
        if type(value) is list:
            pending.extend(value)
        elif type(value) is dict and id(value) not in held:
            held.add(id(value))
            for item in value.values():
                if type(item) is dict or type(item) is list:
                    push(item)
    return held


#: What each row of a scan shows, by scan (scans are hashed by identity), forgotten with the scan.
_SHOWN: weakref.WeakKeyDictionary[ScanNode, _Shown] = weakref.WeakKeyDictionary()


def _shown_by(scan: ScanNode) -> _Shown:
    """What each row of ``scan`` shows: worked out once per scan, as a cached plan's scans serve request after
    request."""
    shown = _SHOWN.get(scan)
    if shown is None:
        names = scan.query.columns
        columns = tuple(names[output.index].name for output in scan.fields if output.kind == "column")
        shown = _SHOWN[scan] = _Shown.of(scan, columns)
    return shown


def _table(scan: ScanNode) -> TableKey:
    return (scan.department.name, scan.table.name)
