"""Assembling entity objects from link rows and member rows (the last phase of an entity field).

Merge rules (``docs/entities.md``):

* a ``one`` member is the first record found, trying the person's key, or their identifiers from
  confident link rows in link order; a ``many`` member lists the records of each identifier in turn,
  each in the member's own order;
* a merged field takes the first non-null value over its sources in authority order; if a source
  before the one that answered failed, the field is null with that source's error;
* link rows scored under the threshold never contribute to either: each becomes a possible match
  holding the records reached through its identifiers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from adapters.base import Row
from gateway.errors import FedgateError, ForbiddenColumnError, SourceError
from gateway.plan.nodes import ScanNode
from gateway.plan.run import Attached, Failure, Level
from gateway.roots.entity.fetch import EntityFetcher
from gateway.roots.entity.plan import EntityField, EntityShape, MemberScan

#: A member's records by join value: (row, object) pairs, or the error that stopped the member.
Groups = dict[Any, list[tuple[Row, dict[str, Any]]]] | SourceError
#: Per (error, response key): the error and the objects whose field it made null.
Failed = dict[tuple[int, str], tuple[FedgateError, list[dict[str, Any]]]]


def is_confident(shape: EntityShape, row: Row, threshold: float) -> bool:
    """Whether a link row of ``shape`` is scored at or above ``threshold`` (always, without a score)."""
    if shape.score_index is None:
        return True
    score = row[shape.score_index]
    return score is not None and score >= threshold


class EntityObjects:
    """Fills the people of one entity field.

    ``fetcher`` runs the member statements still needed (possible matches); ``threshold`` is the entity's
    link threshold; ``links`` the link rows by key; ``results`` each member scan's rows (by ``id`` of the
    scan), or the error that stopped it.
    """

    def __init__(
        self,
        fetcher: EntityFetcher,
        shape: EntityShape,
        threshold: float,
        links: dict[Any, list[Row]],
        results: dict[int, list[Row] | SourceError],
    ) -> None:
        self.fetcher = fetcher
        self.run = fetcher.run
        self.shape = shape
        self.threshold = threshold
        self.links = links
        self.results = results

    async def fill(self, people: list[dict[str, Any]], keys: list[Any], level: Level) -> None:
        """Fill ``people`` (one per key of ``keys``, standing at ``level``)."""
        shape = self.shape
        placed = {field.index: field.response_key for field in shape.fields if field.kind == "member"}
        groups = [
            await self._groups(scan, self.results[id(scan)], Attached(level, people, _keys(placed, index)))
            for index, scan in enumerate(shape.members)
        ]
        links = tuple(field.response_key for field in shape.fields if field.kind == "links")
        link_rows = [r for key in keys for r in self.links[key]]
        link_objects = await self._view_objects(shape.links_view, link_rows, Attached(level, people, links))
        failed: Failed = {}
        confident = self._confident
        confident_rows = [[row for row in self.links[key] if confident(row)] for key in keys]
        join_values = [self._join_values(scan, keys, confident_rows) for scan in shape.members]
        for field in shape.fields:
            response_key = field.response_key
            if field.kind == "member":
                pairs = zip(people, join_values[field.index], strict=True)
                self._member(pairs, field, shape.members[field.index], groups[field.index], failed)
            elif field.kind == "merged":
                for position, person in enumerate(people):
                    self._merged(person, field, groups, [values[position] for values in join_values], failed)
            elif field.kind == "links":
                for person, key in zip(people, keys, strict=True):
                    person[response_key] = [link_objects[id(row)] for row in self.links[key]]
            elif field.kind == "forbidden":
                error = ForbiddenColumnError(field.type_name)
                for person in people:
                    self._failed(failed, error, person, response_key)
        possible = [field.response_key for field in shape.fields if field.kind == "possible_matches"]
        if possible:
            low = [[row for row in self.links[key] if not confident(row)] for key in keys]
            matches = Attached(level, people, tuple(possible))
            await self._possible(
                [(p, key, rows) for key in possible for p, rows in zip(people, low, strict=True)], matches
            )
        self._report(failed, level)

    def _join_values(self, scan: MemberScan, keys: list[Any], links: list[list[Row]]) -> list[list[Any]]:
        """Per person, the values joining them to a member's records: their key, or the (distinct,
        non-null) identifiers of their given link rows, in link order."""
        link = scan.member.link_column
        if link is None:
            return [[key] for key in keys]
        position = self.shape.identifier_index[link.name]
        joined = []
        for rows in links:
            values = [row[position] for row in rows if row[position] is not None]
            joined.append(list(dict.fromkeys(values)) if len(values) > 1 else values)
        return joined

    def _confident(self, row: Row) -> bool:
        return is_confident(self.shape, row, self.threshold)

    def _report(self, failed: Failed, level: Level) -> None:
        """Each error that nulled a field of objects of ``level``."""
        for (_, response_key), (error, objects) in failed.items():
            self.run.fail(Failure(error, level=level, objects=objects, key=response_key))

    @staticmethod
    def _failed(failed: Failed, error: FedgateError, parent: dict[str, Any], response_key: str) -> None:
        failed.setdefault((id(error), response_key), (error, []))[1].append(parent)

    async def _groups(self, scan: MemberScan, result: list[Row] | SourceError, level: Level) -> Groups:
        """A member's records by join value (standing at ``level``, once attached), or its error."""
        if isinstance(result, SourceError):
            return result
        objects = self.run.objects(scan.node, result)
        await self.run.fill(scan.node, result, objects, level)
        groups: dict[Any, list[tuple[Row, dict[str, Any]]]] = {}
        assert scan.node.key_index is not None
        for row, obj in zip(result, objects, strict=True):
            groups.setdefault(row[scan.node.key_index], []).append((row, obj))
        return groups

    async def _view_objects(self, view: ScanNode | None, rows: list[Row], level: Level) -> dict[int, dict[str, Any]]:
        """Objects of a link-row view for ``rows`` (standing at ``level``, once attached), by the identity of
        the row they were made from."""
        if view is None or not rows:
            return {}
        objects = self.run.objects(view, rows)
        await self.run.fill(view, rows, objects, level)
        return {id(row): obj for row, obj in zip(rows, objects, strict=True)}

    def _member(
        self,
        pairs: Iterable[tuple[dict[str, Any], list[Any]]],
        field: EntityField,
        scan: MemberScan,
        groups: Groups,
        failed: Failed,
    ) -> None:
        """Set a member field on each object of ``pairs`` (object, its join values for the member)."""
        response_key = field.response_key
        if isinstance(groups, SourceError):
            for parent, _ in pairs:
                parent[response_key] = None
                self._failed(failed, groups, parent, response_key)
            return
        get = groups.get
        if scan.many:
            for parent, values in pairs:
                parent[response_key] = [obj for value in values for _, obj in get(value, ())]
        else:
            for parent, values in pairs:
                parent[response_key] = next((group[0][1] for value in values if (group := get(value))), None)

    def _merged(
        self, person: dict[str, Any], field: EntityField, groups: list[Groups], values: list[list[Any]], failed: Failed
    ) -> None:
        """``values``: the person's join values of every member scan."""
        person[field.response_key] = None
        for member_index, column in self.shape.merged[field.index].sources:
            member_groups = groups[member_index]
            if isinstance(member_groups, SourceError):
                self._failed(failed, member_groups, person, field.response_key)
                return
            first = next((group[0] for value in values[member_index] if (group := member_groups.get(value))), None)
            value = first[0][column] if first is not None else None
            if value is not None:
                assert first is not None
                person[field.response_key] = value
                self.run.disclose_value(person, self.shape.members[member_index].node, first[0], column)
                return

    async def _possible(self, possible_people: list[tuple[dict[str, Any], str, list[Row]]], level: Level) -> None:
        """Possible matches (standing at ``level``): one object per low-confidence link row, with the records
        reached through it."""
        match = self.shape.possible
        if match is None or not possible_people:
            return
        items: list[dict[str, Any]] = []  # every possible match, filled below
        placed = {field.index: field.response_key for field in match.fields if field.kind == "member"}
        links = tuple(field.response_key for field in match.fields if field.kind == "link")
        low_rows = [row for _, _, rows in possible_people for row in rows]
        scans = match.members
        # Per scan, per low row: the values joining that one link row to the scan's records.
        join_values = [self._join_values(scan, [None] * len(low_rows), [[row] for row in low_rows]) for scan in scans]
        fetched = await asyncio.gather(
            *(
                self.fetcher.member_rows(scan, [value for values in per_row for value in values])
                for scan, per_row in zip(scans, join_values, strict=True)
            )
        )
        groups = [
            await self._groups(scan, rows, Attached(level, items, _keys(placed, index)))
            for index, (scan, rows) in enumerate(zip(scans, fetched, strict=True))
        ]
        link_objects = await self._view_objects(match.link_view, low_rows, Attached(level, items, links))
        failed: Failed = {}
        position = 0
        for person, response_key, rows in possible_people:
            matches = []
            for row in rows:
                item: dict[str, Any] = {}
                for field in match.fields:
                    if field.kind == "link":
                        item[field.response_key] = link_objects.get(id(row))
                    elif field.kind == "typename":
                        item[field.response_key] = field.type_name
                    elif field.kind == "member":
                        pair = (item, join_values[field.index][position])
                        self._member([pair], field, scans[field.index], groups[field.index], failed)
                    else:
                        item[field.response_key] = None
                matches.append(item)
                position += 1
            person[response_key] = matches
            items.extend(matches)
        self._report(failed, level)


def _keys(placed: dict[int, str], index: int) -> tuple[str, ...]:
    """The response key member scan ``index`` is placed at, if a field selects it (merged fields alone don't)."""
    return (placed[index],) if index in placed else ()
