"""Running an entity root field: keys, then link rows, then members, then the merged objects.

See :mod:`gateway.roots.entity.plan` for what each statement is. Failures follow the rule of the
rest of the executor, with one addition for fields that combine departments:

* the **keys** of ``people``/``peopleCount`` come from every department the condition names: if any
  fails, the field is null with ``INCOMPLETE_RESULT`` naming the failed departments, never a list or
  count computed from the departments that answered;
* the **link rows** decide who exists: if the link table fails, the field is null with its error;
* a **member** that fails is null at that member's path on every person, with its error; a merged
  field is null (with the error) when a source more authoritative than the one that answered failed,
  so a value is never silently taken from a less authoritative department.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from adapters.base import Row
from gateway.errors import IncompleteResultError, SourceError
from gateway.plan.run import At, Failure, Level, Listed, Path, Run, concurrently
from gateway.roots.entity.fetch import EntityFetcher
from gateway.roots.entity.objects import EntityObjects, is_confident
from gateway.roots.entity.plan import (
    EntityQuery,
    EntityShape,
    KeyAll,
    KeyAny,
    KeyCondition,
    KeyStep,
    KeyValues,
    MemberScan,
)


class EntityRun:
    """Answers one entity root field within a running plan."""

    def __init__(self, run: Run, root: EntityQuery) -> None:
        self.run = run
        self.root = root
        self.entity = root.entity
        self.fetcher = EntityFetcher(run, root.chunk_size)

    async def execute(self, path: Path) -> Any:
        root = self.root
        if root.kind == "lookup":
            assert root.key is not None
            key = root.key.resolve(self.run.variables)
            people = await self._people([key], path, single=True)
            return people[0] if people else None
        try:
            keys = await self._keys()
        except SourceError as error:
            self._fail_whole(error, path)
            return None
        if root.kind == "count":
            return await self._count(keys, path)
        if keys is None:  # no condition: the page of keys, then their link rows (one statement when fused)
            return await self._people(None, path)
        page = await self._page(keys, path)
        if page is None:
            return None
        return await self._people(page, path)

    def _fail_whole(self, error: SourceError, path: Path) -> None:
        departments = sorted({error.department, *self._condition_departments()} - {""})
        incomplete = IncompleteResultError(
            f"{self.root.response_key} combines departments and {error.department} did not answer "
            f"({error.code}); it is not computed from the others",
            departments=[error.department] if error.department else departments,
            retryable=error.retryable,
        )
        self.run.fail(Failure(incomplete, path=path))

    def _condition_departments(self) -> set[str]:
        return {node.department.name for node in self.root.statements()}

    # --- keys -------------------------------------------------------------------------------------

    async def _keys(self) -> set[Any] | None:
        if self.root.condition is None:
            return None
        return await self._evaluate(self.root.condition, None)

    async def _evaluate(self, condition: KeyCondition, pushed: set[Any] | None) -> set[Any]:
        if isinstance(condition, KeyValues):
            value = condition.slot.resolve(self.run.variables)
            found = set(value or ()) if condition.is_list else ({value} if value is not None else set())
        elif isinstance(condition, KeyStep):
            found = await self._step(condition, pushed)
        elif isinstance(condition, KeyAll):
            found_all = pushed
            for part in condition.parts:
                found_all = await self._evaluate(part, found_all)
                if not found_all:
                    return set()
            return found_all if found_all is not None else set()
        else:
            assert isinstance(condition, KeyAny)
            parts = await concurrently([self._evaluate(part, pushed) for part in condition.parts])
            found = set().union(*parts) if parts else set()
        return found & pushed if pushed is not None else found

    async def _step(self, step: KeyStep, pushed: set[Any] | None) -> set[Any]:
        member = step.member
        link = member.link_column
        if step.pushed and pushed is not None:
            if link is None:
                rows = await self.fetcher.chunked(step.node, pushed)
                found = {row[0] for row in rows}
                self.run.note_keys_moved(step.node, len(pushed), len(found))
                return found
            pairs = await self.fetcher.chunked(self.root.translations[link.name].from_keys, pushed)
            identifiers = {row[1] for row in pairs}
            matched = {row[0] for row in await self.fetcher.chunked(step.node, identifiers)}
            found = {key for key, identifier in pairs if identifier in matched}
            self.run.note_keys_moved(step.node, len(identifiers), len(matched))
            return found
        rows = await self.run.fetch(step.node, {})
        values = {row[0] for row in rows}
        self.run.note_keys_moved(step.node, 0, len(values))
        if link is None:
            return values
        pairs = await self.fetcher.chunked(self.root.translations[link.name].to_keys, values)
        return {key for key, _ in pairs}

    # --- page and count ----------------------------------------------------------------------------

    async def _page(self, keys: set[Any], path: Path) -> list[Any] | None:
        root = self.root
        assert root.page is not None
        try:
            if not keys:
                return []
            if len(keys) <= root.chunk_size:
                node = root.keyed_page_scan
                assert node is not None and node.keys_parameter is not None
                return [row[0] for row in await self.run.fetch(node, {node.keys_parameter: sorted(keys)})]
            assert root.present_scan is not None
            present = sorted({row[0] for row in await self.fetcher.chunked(root.present_scan, keys)})
        except SourceError as error:
            self._fail_whole(error, path)
            return None
        offset = root.page.offset.resolve(self.run.variables)
        limit = root.page.limit.resolve(self.run.variables)
        return present[offset : offset + limit]

    async def _count(self, keys: set[Any] | None, path: Path) -> int | None:
        root = self.root
        try:
            if keys is None:
                assert root.count_scan is not None
                rows = await self.run.fetch(root.count_scan, {})
                return int(rows[0][0]) if rows else 0
            assert root.present_scan is not None
            return len({row[0] for row in await self.fetcher.chunked(root.present_scan, keys)})
        except SourceError as error:
            self._fail_whole(error, path)
            return None

    # --- people --------------------------------------------------------------------------------------

    async def _people(
        self, keys: Sequence[Any] | None, path: Path, *, single: bool = False
    ) -> list[dict[str, Any]] | None:
        """The people of ``keys`` (in that order) who have link rows, or with ``None`` those of the list's
        page (read with their link rows in one statement once fused); ``None`` if the link table failed.
        ``single``: the field is a look-up, answered by the first person, at ``path`` itself."""
        shape = self.root.shape
        assert shape is not None
        if keys is None and self.root.page_keys is not None:  # not fused: the page's keys come first
            try:
                keys = [row[0] for row in await self.run.fetch(self.root.page_keys, {})]
            except SourceError as error:
                self.run.fail(Failure(error, path=path))
                return None
        direct = [scan for scan in shape.members if scan.member.by_key]
        linked = [scan for scan in shape.members if not scan.member.by_key]
        direct_tasks: list[asyncio.Task[list[Row] | SourceError]] = []
        linked_rows: asyncio.Future[list[list[Row] | SourceError]] | None = None
        try:
            if keys is None:
                assert self.root.page_scan is not None
                spine_rows = await self.run.fetch(self.root.page_scan, {})
                ordered = sorted({row[0] for row in spine_rows})  # the page's order: by key, code point
                direct_tasks = [asyncio.create_task(self.fetcher.member_rows(scan, ordered)) for scan in direct]
            else:
                ordered = [key for key in dict.fromkeys(keys) if key is not None]
                # Members joined by the key need no link rows: they run alongside the link table's statement.
                direct_tasks = [asyncio.create_task(self.fetcher.member_rows(scan, ordered)) for scan in direct]
                spine_rows = await self.fetcher.chunked(shape.spine, ordered)
            links: dict[Any, list[Row]] = {}
            for row in spine_rows:
                links.setdefault(row[0], []).append(row)
            # Members joined by another identifier start as soon as the links are in, whether or not
            # the members joined by the key have answered.
            linked_rows = asyncio.gather(
                *(
                    self.fetcher.member_rows(scan, self._identifiers(shape, scan, links, confident=True))
                    for scan in linked
                )
            )
            direct_rows = await asyncio.gather(*direct_tasks)
        except SourceError as error:
            self.run.fail(Failure(error, path=path))
            return None
        except BaseException:
            if linked_rows is not None:
                linked_rows.cancel()
            raise
        finally:
            for task in direct_tasks:
                task.cancel()
        results: dict[int, list[Row] | SourceError] = dict(zip((id(s) for s in direct), direct_rows, strict=True))
        results.update(zip((id(s) for s in linked), await linked_rows, strict=True))
        present = [key for key in ordered if key in links]
        people = self._people_of(shape, present)
        kind = self.entity.key_column.identifier or self.entity.entity.key
        shown = (self.entity.key_column.name,) if any(field.kind == "key" for field in shape.fields) else ()
        threshold = self.entity.entity.link.threshold
        for person, key in zip(people, present, strict=True) if shape.spine.subjects else ():
            # the person: their key and the identifiers of the links confident enough to be them (a possible
            # match is another person, recorded only if its records are returned)
            rows = [row for row in links[key] if is_confident(shape, row, threshold)]
            found = {(kind, str(key))}
            found.update(
                (subject.kind, str(row[subject.index]))
                for row in rows
                for subject in shape.spine.subjects
                if row[subject.index] is not None
            )
            self.run.disclose(person, shape.spine, rows, sorted(found), shown)
        level: Level = At(path) if single else Listed(path, people)
        await EntityObjects(self.fetcher, shape, threshold, links, results).fill(people, present, level)
        return people

    def _identifiers(
        self, shape: EntityShape, scan: MemberScan, links: dict[Any, list[Row]], *, confident: bool
    ) -> list[Any]:
        link = scan.member.link_column
        assert link is not None
        position = shape.identifier_index[link.name]
        threshold = self.entity.entity.link.threshold
        return [
            row[position]
            for rows in links.values()
            for row in rows
            if row[position] is not None and is_confident(shape, row, threshold) == confident
        ]

    @staticmethod
    def _people_of(shape: EntityShape, keys: list[Any]) -> list[dict[str, Any]]:
        """One object per key, every response key in place (in order): the key and ``__typename`` set,
        the rest ``None`` until filled."""
        template: dict[str, Any] = {
            field.response_key: field.type_name if field.kind == "typename" else None for field in shape.fields
        }
        key_fields = [field.response_key for field in shape.fields if field.kind == "key"]
        people = []
        for key in keys:
            person = template.copy()
            for response_key in key_fields:
                person[response_key] = key
            people.append(person)
        return people
