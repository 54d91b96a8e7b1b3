"""Running a plan: fan out to departments, batch each nesting level, shape the response.

* Every root field starts at once (:meth:`~gateway.plan.plan.RootNode.execute`), so departments are
  queried concurrently; each kind of root field answers through the :class:`PlanRun`.
* A relationship level runs **one** statement for all parent rows (``WHERE key IN :keys``), however many
  parents there are, then the next level, and so on: statements = scans, never rows.
* A department that fails or times out yields ``null`` at each of its paths with an error naming the
  department, a stable code and whether retrying may help; the rest of the answer still comes back.
* The request has a deadline; each statement gets the smaller of its source's timeout and the time left.
* The result says what each department asked contributed (:mod:`gateway.execution.outcome`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.base import NO_CONTEXT, FetchContext, Row
from gateway.errors import ForbiddenColumnError, QueryLimit, QueryLimitError, SourceError
from gateway.execution.disclosure import Disclosure, DisclosureSummary
from gateway.execution.failures import failure_errors
from gateway.execution.guarded_adapters import GuardedAdapters
from gateway.execution.outcome import DepartmentOutcome, department_outcomes
from gateway.plan.nodes import ChildEdge, ParentKeys, ScanNode
from gateway.plan.plan import BoundPlan
from gateway.plan.run import Attached, Failure, Level, Object, concurrently


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
    #: What the answer disclosed (rows per table, whom they are about), when the run was audited.
    disclosed: DisclosureSummary | None = None

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
        self,
        bound: BoundPlan,
        variables: Mapping[str, Any],
        context: FetchContext = NO_CONTEXT,
        *,
        audited: bool = False,
    ) -> PlanResult:
        """Answer every root field of the plan (``audited``: and note what the answer disclosed).

        Raises :class:`QueryLimitError` before any statement when the pages asked for could return more
        than ``max_cost`` rows in all.
        """
        deadline = time.monotonic() + self.request_timeout
        run = PlanRun(self.sources, bound, variables, deadline, context, Disclosure() if audited else None)
        cost = bound.plan.cost(variables)
        if cost > self.max_cost:
            raise QueryLimitError(
                f"the query could return up to {cost} rows; at most {self.max_cost} are allowed: ask for smaller pages",
                limit=QueryLimit.COST,
            )
        return await run.execute()


class PlanRun:
    """One execution of a plan: its resolved parameter values, deadline, and what it has recorded so far.

    It is the :class:`~gateway.plan.run.Run` every root field runs within: the root fields fetch through it
    and it builds, completes and places the objects of their statements.
    """

    def __init__(
        self,
        sources: GuardedAdapters,
        bound: BoundPlan,
        variables: Mapping[str, Any],
        deadline: float,
        context: FetchContext,
        disclosure: Disclosure | None = None,
    ) -> None:
        self.sources = sources
        self.disclosure = disclosure
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
        roots = self.plan.roots
        values = await concurrently([root.execute(self, (root.response_key,)) for root in roots])
        data = {root.response_key: value for root, value in zip(roots, values, strict=True)}
        departments = department_outcomes(self.asked, self.statements, self.source_errors)
        errors = failure_errors(self.failures)
        disclosed = self.disclosure.summary(data, failed=bool(self.failures)) if self.disclosure is not None else None
        return PlanResult(data, errors, self.statements, departments, self.keys_moved, disclosed)

    async def fetch(self, node: ScanNode, values: Mapping[str, Any]) -> list[Row]:
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

    def objects(self, node: ScanNode, rows: Sequence[Row]) -> list[Object]:
        """One response object per row of ``node`` (child fields ``None`` until filled)."""
        objects = []
        for row in rows:
            obj: Object = {}
            for output in node.fields:
                if output.kind == "column":
                    obj[output.response_key] = row[output.index]
                elif output.kind == "typename":
                    obj[output.response_key] = output.type_name
                else:
                    obj[output.response_key] = None
            objects.append(obj)
        if self.disclosure is not None:
            self.disclosure.note_rows(objects, node, rows)
        return objects

    def one(self, objects: list[Object]) -> Object | None:
        """The first of ``objects`` (a field holding one); the others are left out of the answer."""
        if len(objects) > 1:
            self.may_leave_out()
        return objects[0] if objects else None

    def may_leave_out(self) -> None:
        """Objects made may be left out of the answer: the audit walks it to find those it holds."""
        if self.disclosure is not None:
            self.disclosure.may_leave_out()

    def disclose(
        self,
        obj: Object,
        node: ScanNode,
        rows: Sequence[Row],
        subjects: Iterable[tuple[str, str]],
        columns: tuple[str, ...] = (),
    ) -> None:
        """Note that ``obj`` stands for ``rows`` of ``node``, about ``subjects``, if the run is audited."""
        if self.disclosure is not None:
            self.disclosure.note(obj, node, rows, subjects, columns)

    def disclose_value(self, obj: Object, node: ScanNode, row: Row, index: int) -> None:
        """Note that ``obj`` shows the value at ``index`` of ``row``, if the run is audited."""
        if self.disclosure is not None:
            self.disclosure.note_value(obj, node, row, index)

    async def fill(
        self,
        node: ScanNode,
        rows: Sequence[Row],
        objects: list[Object],
        level: Level,
        fused_rows: Sequence[Sequence[Row]] = (),
    ) -> None:
        """Report ``objects``' forbidden fields, then fill each child level: fetched (one statement for all
        of ``objects``), or already in hand when fused into ``node``."""
        if not objects:
            return
        for output in node.forbidden:
            error = ForbiddenColumnError(output.type_name)
            self.failures.append(Failure(error, level=level, objects=objects, key=output.response_key))
        if not node.children:
            return
        fused = node.fused.edge_index if node.fused is not None else None
        work = [
            self._attach(edge, fused_rows, objects, level)
            if index == fused
            else self._child(edge, rows, objects, level)
            for index, edge in enumerate(node.children)
        ]
        await concurrently(work)

    async def _attach(
        self, edge: ChildEdge, groups: Sequence[Sequence[Row]], parents: list[Object], level: Level
    ) -> None:
        """A fused child level: ``groups[i]`` holds the rows of ``parents[i]``, already paged and ordered."""
        rows = [row for group in groups for row in group]
        objects = self.objects(edge.node, rows)
        start = 0
        for parent, group in zip(parents, groups, strict=True):
            mine, start = objects[start : start + len(group)], start + len(group)
            parent[edge.response_key] = mine if edge.many else self.one(mine)
        await self.fill(edge.node, rows, objects, Attached(level, parents, (edge.response_key,)))

    async def _child(self, edge: ChildEdge, parent_rows: Sequence[Row], parents: list[Object], level: Level) -> None:
        child = edge.node
        assert child.keys_parameter is not None and child.key_index is not None
        keys = list(dict.fromkeys(row[edge.parent_key_index] for row in parent_rows))
        keys = [key for key in keys if key is not None]
        groups: dict[Any, list[Object]] = {}
        rows: list[Row] = []
        objects: list[Object] = []
        if keys:
            try:
                rows = await self.fetch(child, {child.keys_parameter: keys})
            except SourceError as error:
                self.failures.append(Failure(error, level=level, objects=parents, key=edge.response_key))
                return
            rows = self.residual_page(child, rows)
            objects = self.objects(child, rows)
            for row, obj in zip(rows, objects, strict=True):
                groups.setdefault(row[child.key_index], []).append(obj)
        for row, parent in zip(parent_rows, parents, strict=True):
            group = groups.get(row[edge.parent_key_index])
            parent[edge.response_key] = (group or []) if edge.many else self.one(group or [])
        await self.fill(child, rows, objects, Attached(level, parents, (edge.response_key,)))

    def residual_page(self, node: ScanNode, rows: list[Row]) -> list[Row]:
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
