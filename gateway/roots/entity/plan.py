"""The plan of an entity root field (``person``, ``people``, ``peopleCount``): see ``docs/entities.md``.

Answering one takes three phases, each a set of statements planned by :mod:`gateway.roots.entity.build`
and run by :mod:`gateway.roots.entity.run`:

1. **Keys.** ``person(nhsNumber:)`` names its key. ``people(where:)`` evaluates its condition as a chain
   of semi-joins: each member condition is a :class:`KeyStep` returning the keys of people with a
   matching record; steps of an ``and`` run most selective first, each receiving the keys found so far
   as ``IN (...)`` (chunked), so later departments only look at candidates. Keys reach members joined
   by another identifier through the link table, over confident links only (:class:`Translation`).
   The page (``limit``/``offset``, ordered by key) is taken last, from the link table, where it is exact.
2. **Links.** The link rows of the page's keys (:attr:`EntityShape.spine`): they decide which people
   exist for the caller and carry the other identifiers with their scores. A list without a condition
   reads its page of keys (:attr:`EntityQuery.page_keys`) and then these rows; the fuse pass makes the two
   one statement (:attr:`EntityQuery.page_scan`, :mod:`gateway.roots.entity.page_links`).
3. **Members.** One batched statement per member field: by key, or by the identifiers from the links.
   Records reached through a link scored under the threshold go to ``possibleMatches``, never merged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.plan.nodes import Page, ScanChange, ScanNode, Slot
from gateway.roots.entity.page_links import page_with_links
from schema.entities import ResolvedEntity, ResolvedMember


@dataclass(frozen=True)
class MemberScan:
    """A member's records for a set of people: one statement keyed by the member's join column."""

    member: ResolvedMember
    node: ScanNode
    #: Row positions of the columns merged fields read from this scan.
    columns: Mapping[str, int] = field(default_factory=dict)

    @property
    def many(self) -> bool:
        return self.member.member.kind == "many"

    def map_scans(self, change: ScanChange) -> MemberScan:
        return dataclasses.replace(self, node=self.node.map(change))


@dataclass(frozen=True)
class MergedValue:
    """A merged field: the first source (member scan index, column position) with a value."""

    sources: tuple[tuple[int, int], ...]


EntityFieldKind = Literal["key", "merged", "member", "links", "possible_matches", "link", "typename", "forbidden"]


@dataclass(frozen=True)
class EntityField:
    """A response key of an entity object (or of a possible match): ``index`` points into the shape's
    ``merged`` or ``members``; ``type_name`` holds the type for ``__typename`` or the coordinate of a
    forbidden field."""

    response_key: str
    kind: EntityFieldKind
    index: int = 0
    type_name: str = ""


@dataclass(frozen=True)
class PossibleShape:
    """A possible match: one low-confidence link row and the records reached through it."""

    fields: tuple[EntityField, ...]
    #: The link row as an object (a view over the spine's rows), when ``link`` is selected.
    link_view: ScanNode | None
    members: tuple[MemberScan, ...]

    def map_scans(self, change: ScanChange, spine: ScanNode) -> PossibleShape:
        """With every statement changed, the link view shaping the (changed) ``spine``'s rows."""
        return dataclasses.replace(
            self,
            link_view=view_of(spine, self.link_view, change),
            members=tuple(member.map_scans(change) for member in self.members),
        )


@dataclass(frozen=True)
class EntityShape:
    """How the objects of one entity field are built from its statements."""

    fields: tuple[EntityField, ...]
    #: The link rows of a set of keys: key, score and identifier columns (plus what ``links`` selects).
    spine: ScanNode
    score_index: int | None
    #: Link column name → row position, for the identifiers members are joined by.
    identifier_index: Mapping[str, int]
    members: tuple[MemberScan, ...]
    merged: tuple[MergedValue, ...]
    #: The ``links`` field as objects: a view sharing the spine's rows (no statement of its own).
    links_view: ScanNode | None = None
    possible: PossibleShape | None = None

    def map_scans(self, change: ScanChange) -> EntityShape:
        spine = change(self.spine)
        return dataclasses.replace(
            self,
            spine=spine,
            members=tuple(member.map_scans(change) for member in self.members),
            links_view=view_of(spine, self.links_view, change),
            possible=self.possible.map_scans(change, spine) if self.possible is not None else None,
        )


def view_of(spine: ScanNode, view: ScanNode | None, change: ScanChange) -> ScanNode | None:
    """``view`` (a selection over the spine's rows) over ``spine``, its child levels changed by ``change``.

    A view runs no statement of its own: it shares the spine's rows, so only its children are statements."""
    if view is None:
        return None
    return dataclasses.replace(spine, fields=view.fields, children=view.with_children(change).children)


# --- key conditions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyValues:
    """``key: {eq: ...}`` or ``key: {in: [...]}``: an exact set of keys."""

    slot: Slot
    is_list: bool

    def map_scans(self, change: ScanChange) -> KeyValues:
        return self


@dataclass(frozen=True)
class KeyStep:
    """People with at least one record of ``member`` meeting a condition: ``SELECT col ... GROUP BY col``.

    ``node`` takes the candidate keys (or identifiers) found so far as ``IN :keys`` when ``pushed``.
    """

    member: ResolvedMember
    node: ScanNode
    pushed: bool
    #: Estimated number of matching records, for ordering the steps of an ``and``.
    estimate: float
    description: str

    def map_scans(self, change: ScanChange) -> KeyStep:
        return dataclasses.replace(self, node=change(self.node))


@dataclass(frozen=True)
class KeyAll:
    """Every part must hold: evaluated in order, each part narrowing the next."""

    parts: tuple[KeyCondition, ...]

    def map_scans(self, change: ScanChange) -> KeyAll:
        return KeyAll(tuple(part.map_scans(change) for part in self.parts))


@dataclass(frozen=True)
class KeyAny:
    """At least one part must hold: the union of the parts."""

    parts: tuple[KeyCondition, ...]

    def map_scans(self, change: ScanChange) -> KeyAny:
        return KeyAny(tuple(part.map_scans(change) for part in self.parts))


KeyCondition = KeyValues | KeyStep | KeyAll | KeyAny


@dataclass(frozen=True)
class Translation:
    """Confident link rows mapping between the key and one other identifier (``key, identifier`` rows)."""

    from_keys: ScanNode
    to_keys: ScanNode

    def map_scans(self, change: ScanChange) -> Translation:
        return Translation(change(self.from_keys), change(self.to_keys))


@dataclass(frozen=True)
class EntityQuery:
    """Everything needed to answer an entity root field (:class:`~gateway.roots.entity.root.EntityRoot`
    answers it at its response key): the statements of each phase and the shape of the objects."""

    response_key: str
    entity: ResolvedEntity
    kind: Literal["lookup", "list", "count"]
    #: The key asked for (look-ups).
    key: Slot | None = None
    condition: KeyCondition | None = None
    #: Link column name → translation, for the identifiers key conditions go through.
    translations: Mapping[str, Translation] = field(default_factory=dict)
    page: Page | None = None
    #: The page of keys of the whole link table (a list without a condition), before the fuse pass.
    page_keys: ScanNode | None = None
    #: ``page_keys`` and the link rows of those keys as one statement, made by the fuse pass
    #: (:mod:`gateway.roots.entity.page_links`); then neither ``page_keys`` nor the spine runs.
    page_scan: ScanNode | None = None
    #: The page of keys among candidates (``IN :keys``), when the candidates fit one statement.
    keyed_page_scan: ScanNode | None = None
    #: The candidates the link table holds (``IN :keys``, no page): chunked candidates and counts.
    present_scan: ScanNode | None = None
    #: ``COUNT(DISTINCT key)`` of the link table (count without a condition).
    count_scan: ScanNode | None = None
    shape: EntityShape | None = None
    #: Largest key set sent in one statement; bigger sets are split into chunks run concurrently.
    chunk_size: int = 1000

    def cost(self, variables: Mapping[str, Any]) -> int:
        """Most rows the answer can hold: people on the page times what each person's members can return."""
        if self.shape is None:
            return 1
        people = self.page.limit.resolve(variables) if self.page is not None else 1
        members = list(self.shape.members)
        if self.shape.possible is not None:
            members.extend(self.shape.possible.members)
        views = [
            view for view in (self.shape.links_view, self.shape.possible and self.shape.possible.link_view) if view
        ]
        return (
            people
            + sum(member.node.cost(variables, people) for member in members)
            + sum(child.node.cost(variables, people) for view in views for child in view.children)
        )

    def roles(self) -> dict[int, str]:
        """What each statement is for (by ``id`` of its node), in words, for explain."""
        name = self.entity.entity.name
        roles: dict[int, str] = {}
        steps: list[KeyStep] = []
        pending: list[KeyCondition] = [self.condition] if self.condition is not None else []
        while pending:
            condition = pending.pop(0)
            if isinstance(condition, KeyStep):
                steps.append(condition)
            elif isinstance(condition, KeyAll | KeyAny):
                pending[:0] = condition.parts
        for number, step in enumerate(steps, start=1):
            pushed = "; receives the keys found so far" if step.pushed else ""
            roles[id(step.node)] = (
                f"{self.response_key} step {number}: {step.description} (~{step.estimate:.0f} rows{pushed})"
            )
        for identifier, translation in self.translations.items():
            key = self.entity.key_column.name
            roles[id(translation.from_keys)] = f"{key} to {identifier} over confident links"
            roles[id(translation.to_keys)] = f"{identifier} to {key} over confident links"
        for node, role in (
            (self.page_keys, f"the page of {name} keys"),
            (self.page_scan, f"the page of keys and the link rows of each {name}"),
            (self.keyed_page_scan, "the page of keys among the candidates"),
            (self.present_scan, "the candidates the link table holds"),
            (self.count_scan, f"count of {name} keys"),
        ):
            if node is not None:
                roles[id(node)] = role
        if self.shape is not None:
            roles[id(self.shape.spine)] = f"link rows of each {name}"
            members = [*self.shape.members, *(self.shape.possible.members if self.shape.possible else ())]
            for member in members:
                by = member.member.link_column.name if member.member.link_column is not None else "key"
                roles[id(member.node)] = f"{name}.{member.member.member.name} by {by}"
        return roles

    def statements(self) -> list[ScanNode]:
        """Every statement this root may run, for explain: keys phase first, then links and members."""
        nodes: list[ScanNode] = []
        pending: list[KeyCondition] = [self.condition] if self.condition is not None else []
        while pending:
            condition = pending.pop(0)
            if isinstance(condition, KeyStep):
                nodes.append(condition.node)
            elif isinstance(condition, KeyAll | KeyAny):
                pending[:0] = condition.parts
        for translation in self.translations.values():
            nodes.extend((translation.from_keys, translation.to_keys))
        page = self.page_scan or self.page_keys
        nodes.extend(n for n in (page, self.keyed_page_scan, self.present_scan, self.count_scan) if n)
        shape = self.shape
        if shape is not None:
            if self.page_scan is None:
                nodes.append(shape.spine)
            views = [shape.links_view, shape.possible.link_view if shape.possible is not None else None]
            nodes.extend(node for view in views if view for child in view.children for node in child.node.walk())
            members = [*shape.members, *(shape.possible.members if shape.possible is not None else ())]
            nodes.extend(node for member in members for node in member.node.walk())
        return nodes

    def map_scans(self, change: ScanChange) -> EntityQuery:
        """This field with every statement changed by ``change`` (views keep sharing their spine's rows)."""

        def changed(node: ScanNode | None) -> ScanNode | None:
            return change(node) if node is not None else None

        return dataclasses.replace(
            self,
            condition=self.condition.map_scans(change) if self.condition is not None else None,
            translations={name: translation.map_scans(change) for name, translation in self.translations.items()},
            page_keys=changed(self.page_keys),
            page_scan=changed(self.page_scan),
            keyed_page_scan=changed(self.keyed_page_scan),
            present_scan=changed(self.present_scan),
            count_scan=changed(self.count_scan),
            shape=self.shape.map_scans(change) if self.shape is not None else None,
        )

    def fused(self) -> EntityQuery:
        """The page of keys and its link rows as one statement (both read the link table)."""
        if self.page_keys is None or self.shape is None:
            return self
        return dataclasses.replace(self, page_keys=None, page_scan=page_with_links(self.page_keys, self.shape.spine))
