"""What a root field needs while it runs: the :class:`Run` of its plan, and where each failure lands.

The executor (:mod:`gateway.execution.executor`) provides the :class:`Run`; every kind of root field
(:mod:`gateway.roots`) answers through it, so no root imports the executor and the executor never asks
which kind a root is.

Errors carry their place from where they are raised. A failure that nulls one field (a root scan, an
entity field) carries its path. A failure that nulls a child field on many objects at once (one batched
statement for a whole level) carries the :class:`Level` those objects belong to: each level knows how
it hangs below the one above (a list at a path, one object at a path, or objects set as a field of the
parent level's objects), so the failure's paths follow from the levels alone, and only when it is
reported, without walking the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from adapters.base import Row
from gateway.errors import FedgateError
from gateway.plan.nodes import ScanNode

#: A response path: field names and list indices from the root.
Path = tuple[str | int, ...]
#: A response object being built.
Object = dict[str, Any]

T = TypeVar("T")


class Level(Protocol):
    """A set of response objects built together, and where they stand in the answer."""

    def paths(self, obj: Object) -> Iterator[Path]:
        """Every path at which ``obj`` (an object of this level) stands."""
        ...


@dataclass(frozen=True, slots=True)
class At:
    """The one object of a look-up, standing at ``path``."""

    path: Path

    def paths(self, obj: Object) -> Iterator[Path]:
        yield self.path


@dataclass(slots=True)
class Listed:
    """The objects of a list at ``path``: the i-th at ``path + (i,)``."""

    path: Path
    objects: Sequence[Object]
    _positions: dict[int, int] | None = None

    def paths(self, obj: Object) -> Iterator[Path]:
        if self._positions is None:
            self._positions = {id(item): index for index, item in enumerate(self.objects)}
        position = self._positions.get(id(obj))
        if position is not None:
            yield (*self.path, position)


@dataclass(slots=True)
class Attached:
    """Objects set as field ``keys`` of the ``parents`` (objects of level ``parent``): a child level, an
    entity's member records. One object may hang below several parents (a key many parents share)."""

    parent: Level
    parents: Sequence[Object]
    keys: tuple[str, ...]
    #: Built on first use (a failure being reported): object id → (parent, key, list index or None).
    _places: dict[int, list[tuple[Object, str, int | None]]] | None = None

    def paths(self, obj: Object) -> Iterator[Path]:
        if self._places is None:
            self._places = self._index()
        for parent, key, index in self._places.get(id(obj), ()):
            for path in self.parent.paths(parent):
                yield (*path, key) if index is None else (*path, key, index)

    def _index(self) -> dict[int, list[tuple[Object, str, int | None]]]:
        places: dict[int, list[tuple[Object, str, int | None]]] = {}
        for parent in self.parents:
            for key in self.keys:
                value = parent.get(key)
                if isinstance(value, list):
                    for index, item in enumerate(value):
                        places.setdefault(id(item), []).append((parent, key, index))
                elif value is not None:
                    places.setdefault(id(value), []).append((parent, key, None))
        return places


@dataclass(frozen=True)
class Failure:
    """An error and where it made the answer null: at ``path``, or at field ``key`` of ``objects`` (of
    ``level``; every object of the level when ``objects`` is empty and ``level`` is a :class:`Listed`)."""

    error: FedgateError
    path: Path | None = None
    level: Level | None = None
    objects: Sequence[Object] = field(default_factory=tuple)
    key: str = ""

    def paths(self) -> Iterator[Path]:
        """Each path the error made null, in order: the objects' order, then each object's places."""
        if self.path is not None:
            yield self.path
            return
        assert self.level is not None
        for obj in self.objects:
            for path in self.level.paths(obj):
                yield (*path, self.key)


class Run(Protocol):
    """The running plan, as the root fields see it."""

    @property
    def variables(self) -> Mapping[str, Any]:
        """The operation's variables."""
        ...

    async def fetch(self, node: ScanNode, values: Mapping[str, Any]) -> list[Row]:
        """Rows of ``node`` run with its resolved parameter values, updated with ``values``."""
        ...

    def objects(self, node: ScanNode, rows: Sequence[Row]) -> list[Object]:
        """One response object per row of ``node`` (child fields ``None`` until filled)."""
        ...

    async def fill(
        self,
        node: ScanNode,
        rows: Sequence[Row],
        objects: list[Object],
        level: Level,
        fused_rows: Sequence[Sequence[Row]] = (),
    ) -> None:
        """Complete ``objects`` (made from ``rows`` of ``node``, standing at ``level``): their forbidden fields
        reported, their child fields fetched level by level (or taken from ``fused_rows``, the rows of the
        child level fused into ``node``'s statement, per parent row)."""
        ...

    def one(self, objects: list[Object]) -> Object | None:
        """What a field holding one object shows: the first of ``objects`` (for the audit, the others are
        noted as left out of the answer)."""
        ...

    def may_leave_out(self) -> None:
        """Note, for the audit, that objects made from rows may be left out of the answer (merged people,
        their records, pages and matches): the answer is then walked to find the ones it holds."""
        ...

    def disclose(
        self,
        obj: Object,
        node: ScanNode,
        rows: Sequence[Row],
        subjects: Iterable[tuple[str, str]],
        columns: tuple[str, ...] = (),
    ) -> None:
        """Note, for the audit, that ``obj`` stands for ``rows`` of ``node``, showing their ``columns``, about
        ``subjects`` (identifier kind, value): for objects not made by :meth:`objects`, such as a merged
        person."""
        ...

    def disclose_value(self, obj: Object, node: ScanNode, row: Row, index: int) -> None:
        """Note, for the audit, that ``obj`` shows the value at ``index`` of ``row`` (a row of ``node``): a
        merged field, whose member record is not itself in the answer."""
        ...

    def residual_page(self, node: ScanNode, rows: list[Row]) -> list[Row]:
        """The per-parent page of ``rows`` that ``node``'s source could not apply itself."""
        ...

    def fail(self, failure: Failure) -> None:
        """Record a failure, reported as errors with the answer."""
        ...

    def note_keys_moved(self, node: ScanNode, keys_in: int, keys_out: int) -> None:
        """Record how many keys a semi-join step received and returned (``extensions.plan``)."""
        ...


async def concurrently(work: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``work`` concurrently and return the results in order; a single coroutine is simply awaited
    (no task needed for it). A failure cancels the others and is raised as itself."""
    if len(work) == 1:
        return [await work[0]]
    if not work:
        return []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coroutine) for coroutine in work]
    except BaseExceptionGroup as failures:
        raise failures.exceptions[0]  # noqa: B904 - the failure itself, with its own cause
    return [task.result() for task in tasks]
