"""Running a plan: fan out to departments, batch each nesting level, shape the response.

* Every root scan starts at once, so departments are queried concurrently.
* A relationship level runs **one** statement for all parent rows (``WHERE key IN :keys``), however many
  parents there are, then the next level, and so on: statements = scans, never rows.
* A department that fails or times out yields ``null`` at each of its paths with an error naming the
  department, a stable code and whether retrying may help; the rest of the answer still comes back.
* The request has a deadline; each statement gets the smaller of its source's timeout and the time left.
* The result says what each department asked contributed (:mod:`gateway.execution.outcome`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.base import NO_CONTEXT, FetchContext
from gateway.errors import ForbiddenColumnError, QueryLimit, QueryLimitError, SourceError
from gateway.execution.binding import BoundPlan
from gateway.execution.entities import EntityRun
from gateway.execution.failures import Failure, failure_errors
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.execution.outcome import DepartmentOutcome, department_outcomes
from gateway.planning.entity_plan import EntityRoot
from gateway.planning.plan import ChildEdge, ForbiddenRoot, Namespace, ParentKeys, RootScan, ScanNode, Typename


@dataclass
class PlanResult:
    """The answer to a plan: its data and errors, and what each department was asked."""

    data: dict[str, Any]
    errors: list[dict[str, Any]]
    #: Statements sent per department (for logs, metrics and tests of batching).
    statements: dict[str, int] = field(default_factory=dict)
    #: Each department asked, complete or failed (``extensions.sources``, strict mode).
    departments: dict[str, DepartmentOutcome] = field(default_factory=dict)
    #: Keys moved by each semi-join step that ran (by ``id`` of its plan node): ``{"in": n, "out": m}``.
    keys_moved: dict[int, dict[str, int]] = field(default_factory=dict)

    @property
    def failed_departments(self) -> list[DepartmentOutcome]:
        return [outcome for outcome in self.departments.values() if outcome.failed]


class Executor:
    """Runs plans against the departments' sources."""

    def __init__(self, sources: GuardedAdapters, request_timeout: float, *, max_cost: int) -> None:
        self.sources = sources
        self.request_timeout = request_timeout
        self.max_cost = max_cost

    async def execute(
        self, bound: BoundPlan, variables: Mapping[str, Any], context: FetchContext = NO_CONTEXT
    ) -> PlanResult:
        """Answer the data part of the plan (introspection fields are left for the caller).

        Raises :class:`QueryLimitError` before any statement when the pages asked for could return more
        than ``max_cost`` rows in all.
        """
        run = _Run(self.sources, bound, variables, time.monotonic() + self.request_timeout, context)
        cost = bound.plan.cost(variables)
        if cost > self.max_cost:
            raise QueryLimitError(
                f"the query could return up to {cost} rows; at most {self.max_cost} are allowed: ask for smaller pages",
                limit=QueryLimit.COST,
            )
        return await run.execute()


async def _concurrently(work: list[Coroutine[Any, Any, None]]) -> None:
    """Run ``work`` concurrently; a single coroutine is simply awaited (no task needed for it)."""
    if len(work) == 1:
        await work[0]
    elif work:
        async with asyncio.TaskGroup() as group:
            for coroutine in work:
                group.create_task(coroutine)


class _Run:
    """One execution of a plan: its resolved parameter values, deadline, and what it has recorded so far.

    It is the :class:`~gateway.execution.scan_run.ScanRun` the plan's entity fields run within.
    """

    def __init__(
        self,
        sources: GuardedAdapters,
        bound: BoundPlan,
        variables: Mapping[str, Any],
        deadline: float,
        context: FetchContext,
    ) -> None:
        self.sources = sources
        self.context = context
        self.bound = bound
        self.plan = plan = bound.plan
        self.variables = variables
        self.deadline = deadline
        self.failures: list[Failure] = []
        self.statements: dict[str, int] = {}
        #: Departments asked, and every error a department's source gave (however the caller used it).
        self.asked: dict[str, None] = {}
        self.keys_moved: dict[int, dict[str, int]] = {}
        self.source_errors: list[tuple[str, SourceError]] = []
        # Resolve every variable-fed value before any I/O: a bad limit fails the request, not half of it.
        self.values: dict[int, dict[str, Any]] = {
            id(scan): {
                name: parameter.slot.resolve(variables)
                for name, parameter in scan.parameters.items()
                if not isinstance(parameter.slot, ParentKeys)
            }
            for scan in plan.scans
        }

    async def execute(self) -> PlanResult:
        data: dict[str, Any] = {}
        work: list[Coroutine[Any, Any, None]] = []
        for root in self.plan.roots:
            if isinstance(root, Typename):
                data[root.response_key] = root.type_name
            elif isinstance(root, Namespace):
                namespace: dict[str, Any] = {}
                data[root.response_key] = namespace
                for entry in root.entries:
                    if isinstance(entry, Typename):
                        namespace[entry.response_key] = entry.type_name
                        continue
                    namespace[entry.response_key] = None
                    path: list[str | int] = [root.response_key, entry.response_key]
                    if isinstance(entry, ForbiddenRoot):
                        self.failures.extend(
                            Failure(ForbiddenColumnError(coordinate), path=path) for coordinate in entry.coordinates
                        )
                    else:
                        work.append(self._root(entry, namespace, path))
            elif isinstance(root, EntityRoot):
                data[root.response_key] = None
                work.append(self._entity(root, data))
            else:
                data[root.response_key] = None  # introspection: filled in by the endpoint
        await _concurrently(work)
        departments = department_outcomes(self.asked, self.statements, self.source_errors)
        errors = failure_errors(self.failures, data)
        return PlanResult(data, errors, self.statements, departments, self.keys_moved)

    async def _entity(self, root: EntityRoot, data: dict[str, Any]) -> None:
        data[root.response_key] = await EntityRun(self, root).execute()

    async def _root(self, entry: RootScan, namespace: dict[str, Any], path: list[str | int]) -> None:
        node = entry.node
        try:
            rows = await self.fetch(node, {})
        except SourceError as error:
            self.failures.append(Failure(error, path=path))
            return
        fused_rows: list[list[tuple[Any, ...]]] = []
        if node.fused is not None:
            rows, fused_rows = node.fused.split(rows)
        objects = self.objects(node, rows)
        await self.children(node, rows, objects, fused_rows)
        namespace[entry.response_key] = (objects[0] if objects else None) if entry.single else objects

    async def fetch(self, node: ScanNode, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Rows of ``node`` run with its resolved parameter values, updated with ``values``."""
        department = node.department.name
        self.asked[department] = None
        values = {**self.values[id(node)], **values}
        try:
            return await self.sources.fetch(
                department, self.bound.statement(node), values, self.deadline, self.context, sent=self.statements
            )
        except SourceError as error:
            self.source_errors.append((department, error))
            raise

    def objects(self, node: ScanNode, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        """One response object per row of ``node`` (child fields ``None`` until filled)."""
        objects = []
        for row in rows:
            obj: dict[str, Any] = {}
            for output in node.fields:
                if output.kind == "column":
                    obj[output.response_key] = row[output.index]
                elif output.kind == "typename":
                    obj[output.response_key] = output.type_name
                else:
                    obj[output.response_key] = None
            objects.append(obj)
        for output in node.fields:
            if output.kind == "forbidden" and objects:
                error = ForbiddenColumnError(output.type_name)
                self.failures.append(Failure(error, parents=objects, response_key=output.response_key))
        return objects

    async def children(
        self,
        node: ScanNode,
        rows: list[tuple[Any, ...]],
        objects: list[dict[str, Any]],
        fused_rows: list[list[tuple[Any, ...]]] | None = None,
    ) -> None:
        """Each child level of ``node``'s rows: fetched, or already in hand when fused into ``node``."""
        if not rows:
            return
        fused = node.fused.edge_index if node.fused is not None else None
        work = [
            self._attach(edge, fused_rows or [], objects) if index == fused else self._child(edge, rows, objects)
            for index, edge in enumerate(node.children)
        ]
        await _concurrently(work)

    async def _attach(
        self, edge: ChildEdge, groups: list[list[tuple[Any, ...]]], parents: list[dict[str, Any]]
    ) -> None:
        """A fused child level: ``groups[i]`` holds the rows of ``parents[i]``, already paged and ordered."""
        rows = [row for group in groups for row in group]
        objects = self.objects(edge.node, rows)
        await self.children(edge.node, rows, objects)
        start = 0
        for parent, group in zip(parents, groups, strict=True):
            mine, start = objects[start : start + len(group)], start + len(group)
            parent[edge.response_key] = mine if edge.many else (mine[0] if mine else None)

    async def _child(self, edge: ChildEdge, parent_rows: list[tuple[Any, ...]], parents: list[dict[str, Any]]) -> None:
        child = edge.node
        assert child.keys_parameter is not None and child.key_index is not None
        keys = list(dict.fromkeys(row[edge.parent_key_index] for row in parent_rows))
        keys = [key for key in keys if key is not None]
        groups: dict[Any, list[dict[str, Any]]] = {}
        if keys:
            try:
                rows = await self.fetch(child, {child.keys_parameter: keys})
            except SourceError as error:
                self.failures.append(Failure(error, parents=parents, response_key=edge.response_key))
                return
            rows = self.residual_page(child, rows)
            objects = self.objects(child, rows)
            await self.children(child, rows, objects)
            for row, obj in zip(rows, objects, strict=True):
                groups.setdefault(row[child.key_index], []).append(obj)
        for row, parent in zip(parent_rows, parents, strict=True):
            group = groups.get(row[edge.parent_key_index])
            parent[edge.response_key] = (group or []) if edge.many else (group[0] if group else None)

    def residual_page(self, node: ScanNode, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Per-parent paging the source could not do: keep rows offset..offset+limit of each key's group."""
        page = node.residual_page
        if page is None:
            return rows
        assert node.key_index is not None
        offset, limit = page.offset.resolve(self.variables), page.limit.resolve(self.variables)
        seen: dict[Any, int] = {}
        kept = []
        for row in rows:
            position = seen[row[node.key_index]] = seen.get(row[node.key_index], -1) + 1
            if offset <= position < offset + limit:
                kept.append(row)
        return kept

    def fail(self, failure: Failure) -> None:
        """Record a failure, reported as errors with the answer."""
        self.failures.append(failure)

    def note_keys_moved(self, node: ScanNode, keys_in: int, keys_out: int) -> None:
        """Record how many keys a semi-join step received and returned (``extensions.plan``)."""
        self.keys_moved[id(node)] = {"in": keys_in, "out": keys_out}
