"""Loading the catalog: a YAML file describing the departments fedgate federates, fully validated.

A catalog is a YAML file written by the people who run fedgate (``fedgate introspect`` writes a first
draft). It is validated in two passes at start-up: pydantic checks shapes and types (unknown keys are
errors), then :mod:`schema.catalog_checks` checks meaning (a relationship to a missing column, a
duplicate name, a GraphQL name clash). Either pass stops start-up with file, line, path and reason.

The model itself lives in :mod:`schema.catalog_model` (the whole catalog) and :mod:`schema.departments`
(departments, tables, columns, relationships); its names are re-exported here, where the rest of
fedgate imports them from.
"""

from __future__ import annotations

from pathlib import Path

from schema.catalog_checks import check_catalog
from schema.catalog_model import Catalog, IdentifierKind
from schema.configfile import ConfigDocument, load_yaml, validate
from schema.departments import Column, Department, GraphQLName, Relationship, Source, SqlName, Table, TableRef
from schema.errors import ConfigError

__all__ = [
    "Catalog",
    "Column",
    "Department",
    "GraphQLName",
    "IdentifierKind",
    "Relationship",
    "Source",
    "SqlName",
    "Table",
    "TableRef",
    "load_catalog",
    "read_catalog",
]


def load_catalog(path: Path, *, resolve_secrets: bool = True) -> Catalog:
    """Load and fully validate a catalog file; raise :class:`~schema.errors.ConfigError` listing every problem.

    ``resolve_secrets=False`` skips reading passwords from the environment, for tools that never
    connect (``fedgate scopes``, ``whocan``, ``explain``).
    """
    return read_catalog(path, resolve_secrets=resolve_secrets)[0]


def read_catalog(path: Path, *, resolve_secrets: bool = True) -> tuple[Catalog, ConfigDocument]:
    """The catalog and the document it was read from (to place later problems at their key and line)."""
    document = load_yaml(path)
    context = {"base_dir": path.resolve().parent, "resolve_secrets": resolve_secrets}
    catalog = validate(Catalog, document, context)
    problems = check_catalog(catalog)
    if problems:
        raise ConfigError([document.issue(loc, reason) for loc, reason in problems])
    return catalog, document
