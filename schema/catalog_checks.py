"""The catalog's semantic checks: what pydantic's shape validation cannot see.

Each check yields ``(location, reason)`` pairs, locations in the file's own terms
(``("departments", 0, "tables", 2, "relationships", 1, "on")``) so that the loader can add the line
number. All checks run, so an operator sees every problem at once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

from schema.catalog_model import Catalog
from schema.departments import Department, Table
from schema.endpoints import GraphQLArgument, GraphQLEndpoint, RestEndpoint, RestFilter
from schema.entity_checks import entities
from schema.naming import is_graphql_name
from schema.types import ColumnType

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


def check_catalog(catalog: Catalog) -> list[Problem]:
    """Every semantic problem in ``catalog`` (an empty list when it is sound)."""
    problems: list[Problem] = []
    for check in CHECKS:
        problems.extend(check(catalog))
    return problems


def _duplicates(names: list[str]) -> set[str]:
    return {name for name, count in Counter(names).items() if count > 1}


def unique_names(catalog: Catalog) -> Iterator[Problem]:
    """Departments, tables, columns, relationships and identifier kinds each have unique names."""
    for name in _duplicates([kind.name for kind in catalog.identifiers]):
        yield ("identifiers",), f"identifier kind '{name}' is declared more than once"
    for name in _duplicates([d.name for d in catalog.departments]):
        yield ("departments",), f"department '{name}' is declared more than once"
    graphql_fields = _duplicates([d.graphql_field for d in catalog.departments])
    for name in graphql_fields:
        yield ("departments",), f"two departments both become the GraphQL field '{name}'"
    for d_index, department in enumerate(catalog.departments):
        d_loc: Loc = ("departments", d_index)
        for name in _duplicates([t.name for t in department.tables]):
            yield (*d_loc, "tables"), f"table '{name}' is declared more than once"
        for t_index, table in enumerate(department.tables):
            t_loc: Loc = (*d_loc, "tables", t_index)
            for name in _duplicates([c.name for c in table.columns]):
                yield (*t_loc, "columns"), f"column '{name}' is declared more than once"
            for name in _duplicates([r.name for r in table.relationships]):
                yield (*t_loc, "relationships"), f"relationship '{name}' is declared more than once"
            fields = [c.graphql_name for c in table.columns] + [r.graphql_name for r in table.relationships]
            for name in _duplicates(fields):
                yield t_loc, f"two columns or relationships both become the GraphQL field '{name}'"


def graphql_names(catalog: Catalog) -> Iterator[Problem]:
    """Type names are unique across the whole schema; list and look-up fields don't collide."""
    type_names: dict[str, Loc] = {}
    for d_index, department in enumerate(catalog.departments):
        root_fields: set[str] = set()
        for t_index, table in enumerate(department.tables):
            t_loc: Loc = ("departments", d_index, "tables", t_index)
            type_name = department.type_name(table)
            if not is_graphql_name(type_name):
                yield t_loc, f"'{type_name}' is not a valid GraphQL type name"
            if type_name in type_names:
                yield t_loc, f"GraphQL type '{type_name}' is generated twice; set type_name"
            type_names[type_name] = t_loc
            for field in (table.list_field, table.lookup_field_name):
                if field in root_fields:
                    yield t_loc, f"field '{field}' of '{department.graphql_field}' is generated twice"
                root_fields.add(field)


def primary_keys(catalog: Catalog) -> Iterator[Problem]:
    """Primary-key columns exist."""
    for d_index, t_index, _department, table in _tables(catalog):
        for position, name in enumerate(table.primary_key):
            if name not in table.columns_by_name:
                loc: Loc = ("departments", d_index, "tables", t_index, "primary_key", position)
                yield loc, f"primary key column '{name}' is not a column of {table.name}"


def identifier_kinds(catalog: Catalog) -> Iterator[Problem]:
    """Columns refer to declared identifier kinds; identifier patterns are valid regular expressions."""
    declared = {kind.name for kind in catalog.identifiers}
    for index, kind in enumerate(catalog.identifiers):
        if kind.pattern is not None:
            try:
                re.compile(kind.pattern)
            except re.error as exc:
                yield ("identifiers", index, "pattern"), f"not a valid regular expression: {exc.msg}"
    for d_index, t_index, _department, table in _tables(catalog):
        for c_index, column in enumerate(table.columns):
            if column.identifier is not None and column.identifier not in declared:
                loc: Loc = ("departments", d_index, "tables", t_index, "columns", c_index, "identifier")
                yield loc, f"identifier kind '{column.identifier}' is not declared under 'identifiers'"


def relationships(catalog: Catalog) -> Iterator[Problem]:
    """Relationships point at existing tables and columns of the same type."""
    for d_index, t_index, department, table in _tables(catalog):
        for r_index, relationship in enumerate(table.relationships):
            r_loc: Loc = ("departments", d_index, "tables", t_index, "relationships", r_index)
            target_department = catalog.departments_by_name.get(relationship.target_department)
            if target_department is None:
                yield (*r_loc, "target"), f"department '{relationship.target_department}' does not exist"
                continue
            target = target_department.tables_by_name.get(relationship.target_table)
            if target is None:
                yield (
                    (*r_loc, "target"),
                    (f"table '{relationship.target_table}' does not exist in department '{target_department.name}'"),
                )
                continue
            if len(relationship.on) != 1:
                yield (*r_loc, "on"), "a relationship joins on exactly one column pair in this version"
                continue
            for local, remote in relationship.on.items():
                if local not in table.columns_by_name:
                    yield (*r_loc, "on", local), f"column '{local}' does not exist in {department.name}.{table.name}"
                    continue
                if remote not in target.columns_by_name:
                    yield (*r_loc, "on", local), f"column '{remote}' does not exist in {relationship.target}"
                    continue
                local_type, remote_type = table.column(local).type, target.column(remote).type
                if local_type is not remote_type:
                    yield (
                        (*r_loc, "on", local),
                        (f"cannot join {local_type} column '{local}' to {remote_type} column '{remote}'"),
                    )


_RANGE_TYPES = frozenset(
    {ColumnType.INTEGER, ColumnType.FLOAT, ColumnType.DECIMAL, ColumnType.DATE, ColumnType.DATETIME}
)


def endpoints(catalog: Catalog) -> Iterator[Problem]:
    """HTTP departments map every table to an endpoint; mappings name real columns; ranges only on ordered types."""
    for d_index, t_index, department, table in _tables(catalog):
        t_loc: Loc = ("departments", d_index, "tables", t_index)
        kind = department.source.kind
        mapping: RestEndpoint | GraphQLEndpoint | None = table.rest if kind == "rest" else table.graphql
        for name, present in (("rest", table.rest), ("graphql", table.graphql)):
            if present is not None and name != kind:
                yield (*t_loc, name), f"'{name}' applies only to tables of a {name} department, not {kind}"
        if kind not in {"rest", "graphql"}:
            continue
        if mapping is None:
            yield t_loc, f"a table of a {kind} department needs '{kind}': where its rows come from"
            continue
        for name in mapping.fields:
            if name not in table.columns_by_name:
                yield (*t_loc, kind, "fields", name), f"'{name}' is not a column of {table.name}"
        key = "filters" if isinstance(mapping, RestEndpoint) else "arguments"
        pushed: Sequence[RestFilter | GraphQLArgument] = (
            mapping.filters if isinstance(mapping, RestEndpoint) else mapping.arguments
        )
        for f_index, pushed_filter in enumerate(pushed):
            f_loc: Loc = (*t_loc, kind, key, f_index)
            column = table.columns_by_name.get(pushed_filter.column)
            if column is None:
                yield (*f_loc, "column"), f"'{pushed_filter.column}' is not a column of {table.name}"
            elif pushed_filter.operator in {"gt", "gte", "lt", "lte"} and column.type not in _RANGE_TYPES:
                yield (
                    (*f_loc, "operator"),
                    (
                        f"'{pushed_filter.operator}' cannot be pushed on {column.type.value} column '{column.name}': "
                        "the API's ordering of text may differ from fedgate's"
                    ),
                )
        yield from _endpoint_keys(t_loc, kind, mapping, table)


def _overlapping(paths: Sequence[str]) -> set[str]:
    """Dotted paths that repeat another or lie inside it (``where`` and ``where.id``)."""
    clashes = {path for path, count in Counter(paths).items() if count > 1}
    for path in paths:
        inside = {other for other in paths if other.startswith(path + ".")}
        if inside:
            clashes.update(inside | {path})
    return clashes


def _endpoint_keys(t_loc: Loc, kind: str, mapping: RestEndpoint | GraphQLEndpoint, table: Table) -> Iterator[Problem]:
    """Each parameter or argument is set by one filter only, and never also by pagination; each remote
    field is selected once; an ``in`` argument takes a list."""
    if isinstance(mapping, RestEndpoint):
        pagination = mapping.pagination.model_dump(exclude={"style", "size", "first_page", "next_cursor"})
        keys = [f.param for f in mapping.filters] + [name for name in pagination.values() if name]
        for f_index, declared in enumerate(mapping.filters):
            if keys.count(declared.param) > 1:
                yield (*t_loc, kind, "filters", f_index, "param"), f"parameter '{declared.param}' is set twice"
        return
    pages = mapping.pagination.model_dump(exclude={"style", "size"})
    paths = [a.argument for a in mapping.arguments] + list(pages.values())
    clashes = _overlapping(paths)
    for a_index, argument in enumerate(mapping.arguments):
        a_loc: Loc = (*t_loc, kind, "arguments", a_index)
        if argument.argument in clashes:
            yield (*a_loc, "argument"), f"argument '{argument.argument}' is set twice or inside another one"
        listed = argument.type.startswith("[")
        if listed != (argument.operator == "in"):
            wanted = "a list type such as [String!]!" if argument.operator == "in" else "a single value's type"
            yield (*a_loc, "type"), f"'{argument.operator}' needs {wanted}, not {argument.type}"
    selected = [mapping.fields.get(column.name, column.name) for column in table.columns]
    for name in sorted(mapping.fields):
        if mapping.fields[name] in _overlapping(selected):
            yield (*t_loc, kind, "fields", name), f"field '{mapping.fields[name]}' is selected twice or inside another"


def _tables(catalog: Catalog) -> Iterator[tuple[int, int, Department, Table]]:
    for d_index, department in enumerate(catalog.departments):
        for t_index, table in enumerate(department.tables):
            yield d_index, t_index, department, table


CHECKS: tuple[Callable[[Catalog], Iterator[Problem]], ...] = (
    unique_names,
    graphql_names,
    primary_keys,
    identifier_kinds,
    relationships,
    endpoints,
    entities,
)
