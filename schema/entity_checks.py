"""Semantic checks of the catalog's ``entities`` section (see :mod:`schema.entities`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from schema.catalog_model import Catalog
from schema.departments import Table
from schema.entities import Entity, member_column
from schema.naming import camel
from schema.types import ColumnType

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]

#: Field names every entity type has besides its members and merged fields.
RESERVED_FIELDS = frozenset({"links", "possibleMatches"})
_SCORE_TYPES = frozenset({ColumnType.FLOAT, ColumnType.DECIMAL})


def entities(catalog: Catalog) -> Iterator[Problem]:
    """Entities refer to existing tables, columns and identifier kinds, and their GraphQL names are unique."""
    names = Counter(entity.name for entity in catalog.entities)
    for name in (name for name, count in names.items() if count > 1):
        yield ("entities",), f"entity '{name}' is declared more than once"
    yield from _root_fields(catalog)
    identifiers = {kind.name for kind in catalog.identifiers}
    for index, entity in enumerate(catalog.entities):
        loc: Loc = ("entities", index)
        if entity.key not in identifiers:
            yield (*loc, "key"), f"identifier kind '{entity.key}' is not declared under 'identifiers'"
            continue
        link_table = _table(catalog, entity.link.table)
        if link_table is None:
            yield (*loc, "link", "table"), f"table '{entity.link.table}' does not exist"
            continue
        yield from _link(entity, link_table, loc)
        yield from _members(catalog, entity, link_table, identifiers, loc)
        yield from _merged(catalog, entity, loc)


def _table(catalog: Catalog, ref: str) -> Table | None:
    try:
        return catalog.table(ref)[1]
    except KeyError:
        return None


def _root_fields(catalog: Catalog) -> Iterator[Problem]:
    taken = {department.graphql_field for department in catalog.departments}
    type_names = {department.type_name(table) for department in catalog.departments for table in department.tables}
    for index, entity in enumerate(catalog.entities):
        for field in (entity.lookup_field_name, entity.list_field, entity.count_field_name):
            if field in taken:
                yield ("entities", index), f"root field '{field}' is generated twice; rename the entity's fields"
            taken.add(field)
        for type_name in (entity.graphql_type, f"{entity.graphql_type}Filter", f"{entity.graphql_type}PossibleMatch"):
            if type_name in type_names:
                yield ("entities", index), f"GraphQL type '{type_name}' is generated twice; set type_name"
            type_names.add(type_name)


def _link(entity: Entity, table: Table, loc: Loc) -> Iterator[Problem]:
    key = table.columns_by_name.get(entity.link.key)
    if key is None:
        yield (*loc, "link", "key"), f"'{entity.link.key}' is not a column of {entity.link.table}"
    elif key.identifier != entity.key:
        yield (*loc, "link", "key"), f"column '{key.name}' does not hold identifier kind '{entity.key}'"
    if entity.link.score is not None:
        score = table.columns_by_name.get(entity.link.score)
        if score is None:
            yield (*loc, "link", "score"), f"'{entity.link.score}' is not a column of {entity.link.table}"
        elif score.type not in _SCORE_TYPES:
            yield (
                (*loc, "link", "score"),
                f"the score column must be a float or decimal from 0 to 1, not {score.type.value}",
            )


def _members(catalog: Catalog, entity: Entity, link_table: Table, identifiers: set[str], loc: Loc) -> Iterator[Problem]:
    fields = Counter(
        [member.graphql_name for member in entity.members] + [field.graphql_name for field in entity.fields]
    )
    key_field = camel(entity.link.key)
    for name, count in fields.items():
        if count > 1 or name in RESERVED_FIELDS or name == key_field:
            yield (*loc,), f"field '{name}' of {entity.graphql_type} is generated twice"
    key_column = link_table.columns_by_name.get(entity.link.key)
    for m_index, member in enumerate(entity.members):
        m_loc: Loc = (*loc, "members", m_index)
        table = _table(catalog, member.table)
        if table is None:
            yield (*m_loc, "table"), f"table '{member.table}' does not exist"
            continue
        identifier = member.by or entity.key
        if identifier not in identifiers:
            yield (*m_loc, "by"), f"identifier kind '{identifier}' is not declared under 'identifiers'"
            continue
        name = member_column(member, table, entity)
        column = table.columns_by_name.get(name)
        if column is None:
            reason = (
                f"'{member.column}' is not a column of {member.table}"
                if member.column
                else f"{member.table} needs exactly one column holding '{identifier}'; set 'column'"
            )
            yield (*m_loc, "column"), reason
            continue
        if identifier == entity.key:
            link_column = key_column
        else:
            tagged = [c for c in link_table.columns if c.identifier == identifier]
            if len(tagged) != 1:
                yield (*m_loc, "by"), f"{entity.link.table} needs exactly one column holding '{identifier}'"
                continue
            link_column = tagged[0]
        if link_column is not None and link_column.type is not column.type:
            yield (
                (*m_loc, "column"),
                (
                    f"cannot join {column.type.value} column '{column.name}' to {link_column.type.value} "
                    f"column '{link_column.name}' of {entity.link.table}"
                ),
            )


def _merged(catalog: Catalog, entity: Entity, loc: Loc) -> Iterator[Problem]:
    for f_index, merged in enumerate(entity.fields):
        f_loc: Loc = (*loc, "fields", f_index, "sources")
        types = set()
        for member_name, column_name in merged.parsed_sources():
            member = entity.members_by_name.get(member_name)
            if member is None:
                yield f_loc, f"'{member_name}' is not a member of entity '{entity.name}'"
                continue
            if member.kind != "one":
                yield f_loc, f"member '{member_name}' is a list; merged fields come from 'one' members"
                continue
            table = _table(catalog, member.table)
            column = table.columns_by_name.get(column_name) if table is not None else None
            if column is None:
                yield f_loc, f"'{column_name}' is not a column of {member.table}"
                continue
            types.add(column.type)
        if len(types) > 1:
            yield (
                f_loc,
                f"the sources of '{merged.name}' have different types: " + ", ".join(sorted(t.value for t in types)),
            )
