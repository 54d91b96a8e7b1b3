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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.errors import FedgateError, ForbiddenColumnError, SourceError
from gateway.planning.entity_plan import EntityField, EntityShape, MemberScan
from gateway.planning.plan import ScanNode

if TYPE_CHECKING:
    from gateway.execution.entities import EntityRun

Row = tuple[Any, ...]
#: A member's records by join value: (row, object) pairs, or the error that stopped the member.
Groups = dict[Any, list[tuple[Row, dict[str, Any]]]] | SourceError
#: Per (error, response key): the error and the objects whose field it made null.
Failed = dict[tuple[int, str], tuple[FedgateError, list[dict[str, Any]]]]


class EntityObjects:
    """Fills the people of one entity field."""

    def __init__(
        self,
        entity_run: EntityRun,
        shape: EntityShape,
        links: dict[Any, list[Row]],
        results: dict[int, list[Row] | SourceError],
    ) -> None:
        self.entity_run = entity_run
        self.run = entity_run.run
        self.shape = shape
        self.links = links
        self.results = results

    async def fill(self, people: list[dict[str, Any]], keys: list[Any]) -> None:
        shape = self.shape
        groups = [await self._groups(scan, self.results[id(scan)]) for scan in shape.members]
        link_objects = await self._view_objects(shape.links_view, [r for key in keys for r in self.links[key]])
        failed: Failed = {}
        forbidden = {
            field.response_key: ForbiddenColumnError(field.type_name)
            for field in shape.fields
            if field.kind == "forbidden"
        }
        possible_people: list[tuple[dict[str, Any], str, list[Row]]] = []
        for person, key in zip(people, keys, strict=True):
            rows = self.links[key]
            confident = [row for row in rows if self.entity_run._confident(shape, row)]
            for field in shape.fields:
                if field.kind == "member":
                    scan = shape.members[field.index]
                    self._member(person, field, scan, groups[field.index], key, confident, failed)
                elif field.kind == "merged":
                    self._merged(person, field, groups, key, confident, failed)
                elif field.kind == "links":
                    person[field.response_key] = [link_objects[id(row)] for row in rows]
                elif field.kind == "possible_matches":
                    low = [row for row in rows if not self.entity_run._confident(shape, row)]
                    possible_people.append((person, field.response_key, low))
                elif field.kind == "forbidden":
                    self._failed(failed, forbidden[field.response_key], person, field.response_key)
        await self._possible(possible_people)
        self._report(failed)

    def _report(self, failed: Failed) -> None:
        from gateway.execution.executor import _Failure

        for (_, response_key), (error, parents) in failed.items():
            self.run.failures.append(_Failure(error, parents=parents, response_key=response_key))

    @staticmethod
    def _failed(failed: Failed, error: FedgateError, parent: dict[str, Any], response_key: str) -> None:
        failed.setdefault((id(error), response_key), (error, []))[1].append(parent)

    async def _groups(self, scan: MemberScan, result: list[Row] | SourceError) -> Groups:
        if isinstance(result, SourceError):
            return result
        objects = self.run._objects(scan.node, result)
        await self.run._children(scan.node, result, objects)
        groups: dict[Any, list[tuple[Row, dict[str, Any]]]] = {}
        assert scan.node.key_index is not None
        for row, obj in zip(result, objects, strict=True):
            groups.setdefault(row[scan.node.key_index], []).append((row, obj))
        return groups

    async def _view_objects(self, view: ScanNode | None, rows: list[Row]) -> dict[int, dict[str, Any]]:
        """Objects of a link-row view for ``rows``, by the identity of the row they were made from."""
        if view is None or not rows:
            return {}
        objects = self.run._objects(view, rows)
        await self.run._children(view, rows, objects)
        return {id(row): obj for row, obj in zip(rows, objects, strict=True)}

    def _values(self, scan: MemberScan, key: Any, links: Sequence[Row]) -> list[Any]:
        """The join values of one person for a member: the key, or identifiers of the given link rows."""
        link = scan.member.link_column
        if link is None:
            return [key]
        position = self.shape.identifier_index[link.name]
        return list(dict.fromkeys(row[position] for row in links if row[position] is not None))

    def _records(self, groups: Groups, values: list[Any]) -> list[tuple[Row, dict[str, Any]]]:
        assert not isinstance(groups, SourceError)
        return [item for value in values for item in groups.get(value, ())]

    def _member(
        self,
        person: dict[str, Any],
        field: EntityField,
        scan: MemberScan,
        groups: Groups,
        key: Any,
        links: Sequence[Row],
        failed: Failed,
    ) -> None:
        if isinstance(groups, SourceError):
            person[field.response_key] = None
            self._failed(failed, groups, person, field.response_key)
            return
        records = [obj for _, obj in self._records(groups, self._values(scan, key, links))]
        person[field.response_key] = records if scan.many else (records[0] if records else None)

    def _merged(
        self,
        person: dict[str, Any],
        field: EntityField,
        groups: list[Groups],
        key: Any,
        links: Sequence[Row],
        failed: Failed,
    ) -> None:
        person[field.response_key] = None
        for member_index, column in self.shape.merged[field.index].sources:
            member_groups = groups[member_index]
            if isinstance(member_groups, SourceError):
                self._failed(failed, member_groups, person, field.response_key)
                return
            scan = self.shape.members[member_index]
            records = self._records(member_groups, self._values(scan, key, links))
            value = records[0][0][column] if records else None
            if value is not None:
                person[field.response_key] = value
                return

    async def _possible(self, possible_people: list[tuple[dict[str, Any], str, list[Row]]]) -> None:
        """Possible matches: one object per low-confidence link row, with the records reached through it."""
        match = self.shape.possible
        if match is None or not possible_people:
            return
        low_rows = [row for _, _, rows in possible_people for row in rows]
        scans = match.members
        fetched = await asyncio.gather(
            *(
                self.entity_run._member_rows(scan, [v for row in low_rows for v in self._values(scan, None, [row])])
                for scan in scans
            )
        )
        groups = [await self._groups(scan, rows) for scan, rows in zip(scans, fetched, strict=True)]
        link_objects = await self._view_objects(match.link_view, low_rows)
        failed: Failed = {}
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
                        self._member(item, field, scans[field.index], groups[field.index], None, [row], failed)
                    else:
                        item[field.response_key] = None
                matches.append(item)
            person[response_key] = matches
        self._report(failed)
