"""The loaded policy and what it lets a principal read.

:class:`Policy` is built once at start-up from the policy file and the catalog. :meth:`Policy.access`
turns a principal's scopes into an :class:`Access`: the tables and columns it may read, with a stable
fingerprint used in every cache key, so two callers with different rights never share a schema, a
validated document or a plan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.errors import ConfigError
from gateway.policy.model import Grant, PolicyDocument, ScopeDefinition
from gateway.principal import Principal
from schema.catalog import Catalog
from schema.configfile import Loc, load_yaml, validate

TableKey = tuple[str, str]


@dataclass(frozen=True)
class Access:
    """What one principal may read: per (department, table), the readable columns."""

    tables: Mapping[TableKey, frozenset[str]]
    #: The scopes that contributed (for explain and audit).
    scopes: frozenset[str] = frozenset()
    key: str = field(default="", compare=False)

    @classmethod
    def of(cls, tables: Mapping[TableKey, frozenset[str]], scopes: Iterable[str]) -> Access:
        canonical = sorted((department, table, sorted(columns)) for (department, table), columns in tables.items())
        key = hashlib.sha256(repr(canonical).encode()).hexdigest()[:24]
        return cls(dict(tables), frozenset(scopes), key)

    @property
    def is_empty(self) -> bool:
        return not any(self.tables.values())

    def table(self, department: str, table: str) -> frozenset[str]:
        return self.tables.get((department, table), frozenset())

    def can_read(self, department: str, table: str, column: str) -> bool:
        return column in self.table(department, table)


def full_access(catalog: Catalog) -> Access:
    """Everything in the catalog (authentication switched off: development only)."""
    tables = {
        (department.name, table.name): frozenset(column.name for column in table.columns)
        for department in catalog.departments
        for table in department.tables
    }
    return Access.of(tables, ())


class Policy:
    """The validated policy file."""

    def __init__(self, document: PolicyDocument, catalog: Catalog, *, version: str) -> None:
        self.document = document
        self.catalog = catalog
        self.version = version
        self.scopes: dict[str, ScopeDefinition] = {scope.name: scope for scope in document.scopes}

    def grants(self, scopes: Iterable[str]) -> Iterator[tuple[ScopeDefinition, Grant]]:
        for name in sorted(set(scopes)):
            scope = self.scopes.get(name)
            if scope is not None:
                for grant in scope.grants:
                    yield scope, grant

    def grant_columns(self, grant: Grant) -> frozenset[str]:
        _, table = self.catalog.table(grant.table)
        if grant.columns == "*":
            return frozenset(column.name for column in table.columns)
        return frozenset(grant.columns)

    def access(self, principal: Principal) -> Access:
        """The union of what the principal's scopes grant (scopes fedgate does not know grant nothing)."""
        tables: dict[TableKey, set[str]] = {}
        used: set[str] = set()
        for scope, grant in self.grants(principal.scopes):
            department, table = grant.table.split(".", 1)
            tables.setdefault((department, table), set()).update(self.grant_columns(grant))
            used.add(scope.name)
        return Access.of({key: frozenset(columns) for key, columns in tables.items()}, used)

    def scopes_granting(self, department: str, table: str, column: str | None = None) -> list[str]:
        """Scopes whose grants let a holder read ``department.table`` (and ``column``, if given)."""
        found = []
        for scope in self.document.scopes:
            for grant in scope.grants:
                if grant.table == f"{department}.{table}" and (column is None or column in self.grant_columns(grant)):
                    found.append(scope.name)
                    break
        return found


def load_policy(path: Path, catalog: Catalog) -> Policy:
    """Load and validate a policy file against the catalog; raise :class:`ConfigError` listing every problem."""
    document = load_yaml(path)
    policy = validate(PolicyDocument, document)
    problems = list(_check(policy, catalog))
    if problems:
        raise ConfigError([document.issue(loc, reason) for loc, reason in problems])
    version = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return Policy(policy, catalog, version=version)


def _check(policy: PolicyDocument, catalog: Catalog) -> Iterator[tuple[Loc, str]]:
    seen: set[str] = set()
    for s_index, scope in enumerate(policy.scopes):
        if scope.name in seen:
            yield ("scopes", s_index, "name"), f"scope '{scope.name}' is defined more than once"
        seen.add(scope.name)
        tables: set[str] = set()
        for g_index, grant in enumerate(scope.grants):
            loc: Loc = ("scopes", s_index, "grants", g_index)
            if grant.table in tables:
                yield (*loc, "table"), f"{grant.table} is granted twice in this scope; merge the grants"
            tables.add(grant.table)
            try:
                _, table = catalog.table(grant.table)
            except KeyError:
                yield (*loc, "table"), f"table '{grant.table}' is not in the catalog"
                continue
            if grant.columns != "*":
                for c_index, column in enumerate(grant.columns):
                    if column not in table.columns_by_name:
                        yield (*loc, "columns", c_index), f"column '{column}' does not exist in {grant.table}"
