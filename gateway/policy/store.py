"""The loaded policy and what it lets one principal read.

:class:`Policy` is built once at start-up: every grant's row filter and masks are parsed and checked
against the catalog (:class:`CompiledGrant`). :meth:`Policy.access` turns a principal into an
:class:`Access`: per table, the readable columns and the grants that apply, plus the principal's
attribute values those grants use and the recipient's pseudonym key. Its ``key`` covers everything
that shapes an answer (policy version, scopes, attribute values, recipient), so two callers with
different rights never share a plan; its ``visibility_key`` covers what shapes the schema.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cachetools import LRUCache

from gateway.errors import ConfigError
from gateway.policy.expressions import PolicyExpression, PolicyExpressionError, parse_condition
from gateway.policy.masks import Mask, parse_mask
from gateway.policy.model import Grant, PolicyDocument, ScopeDefinition
from gateway.policy.secrets import PolicySecrets
from gateway.principal import BUILTIN_ATTRIBUTES, Principal
from gateway.settings import Settings
from schema.catalog import Catalog, Table
from schema.configfile import Loc, load_yaml, validate

TableKey = tuple[str, str]


@dataclass(frozen=True)
class CompiledGrant:
    """A grant with its row filter and masks parsed and checked."""

    scope: str
    department: str
    table: Table
    columns: frozenset[str]
    row_filter: PolicyExpression | None = None
    masks: Mapping[str, Mask] = field(default_factory=dict)
    via: frozenset[str] = frozenset()

    def describe(self) -> str:
        parts = [f"{self.scope} on {self.department}.{self.table.name}"]
        if self.row_filter is not None:
            parts.append(f"rows where {self.row_filter.text}")
        if self.masks:
            parts.append("masks " + ", ".join(f"{name}={mask.describe()}" for name, mask in sorted(self.masks.items())))
        if self.via:
            parts.append("reachable only through " + ", ".join(sorted(self.via)))
        if len(parts) == 1:
            parts.append("all rows, unmasked")
        return "; ".join(parts)


@dataclass(frozen=True)
class TableAccess:
    """What one principal may read of one table."""

    columns: frozenset[str]
    grants: tuple[CompiledGrant, ...] = ()
    #: ``None``: the table may be queried at the root; else only through these relationships.
    via: frozenset[str] | None = None
    #: The readable columns whose stored value is shown on every visible row (no grant masks them, or
    #: a grant admitting every row shows them unmasked). Only these can link records across departments.
    plain: frozenset[str] = frozenset()


def plain_columns(grants: Iterable[CompiledGrant]) -> frozenset[str]:
    """Columns every visible row shows unmasked, given the grants on one table."""
    grants = tuple(grants)
    columns = frozenset().union(*(grant.columns for grant in grants)) if grants else frozenset()
    return frozenset(
        name
        for name in columns
        if all(name in grant.columns and name not in grant.masks for grant in grants)
        or any(grant.row_filter is None and name in grant.columns and name not in grant.masks for grant in grants)
    )


@dataclass(frozen=True)
class Access:
    """What one principal may read, and what enforcing it needs."""

    tables: Mapping[TableKey, TableAccess]
    scopes: frozenset[str] = frozenset()
    #: Values of the principal attributes the grants' filters use.
    attributes: Mapping[str, Any] = field(default_factory=dict)
    pseudonym_key: bytes | None = None
    #: No policy at all (authentication switched off): nothing is rewritten.
    unrestricted: bool = False
    key: str = ""
    visibility_key: str = ""

    @property
    def is_empty(self) -> bool:
        return not any(table.columns for table in self.tables.values())

    def table(self, department: str, table: str) -> TableAccess:
        return self.tables.get((department, table), TableAccess(frozenset()))

    def can_read(self, department: str, table: str, column: str) -> bool:
        return column in self.table(department, table).columns

    def columns(self) -> dict[TableKey, frozenset[str]]:
        return {key: table.columns for key, table in self.tables.items()}

    def plain(self) -> dict[TableKey, frozenset[str]]:
        return {key: table.plain for key, table in self.tables.items()}

    def via_only(self) -> dict[TableKey, frozenset[str]]:
        return {key: table.via for key, table in self.tables.items() if table.via is not None}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _hashable(value: Any) -> Hashable:
    """A claim value (JSON: objects, arrays, scalars) as a hashable cache key."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(key), _hashable(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return ("list", *(_hashable(item) for item in value))
    return (type(value).__name__, value)


@dataclass(frozen=True)
class _ScopedGrants:
    """What a set of scopes grants, before any principal's attribute values are applied."""

    tables: Mapping[TableKey, TableAccess]
    used: frozenset[str]
    #: The principal attributes the grants' row filters use, sorted.
    attributes: tuple[str, ...]
    pseudonyms: bool
    visibility_key: str

    @classmethod
    def of(cls, grants: Iterable[CompiledGrant]) -> _ScopedGrants:
        by_table: dict[TableKey, list[CompiledGrant]] = {}
        for grant in grants:
            by_table.setdefault((grant.department, grant.table.name), []).append(grant)
        tables: dict[TableKey, TableAccess] = {}
        needed: set[str] = set()
        pseudonyms = False
        for key, table_grants in by_table.items():
            columns = frozenset().union(*(grant.columns for grant in table_grants))
            via = (
                None
                if any(not grant.via for grant in table_grants)
                else frozenset().union(*(g.via for g in table_grants))
            )
            tables[key] = TableAccess(columns, tuple(table_grants), via, plain_columns(table_grants))
            for grant in table_grants:
                needed |= grant.row_filter.attributes if grant.row_filter else frozenset()
                pseudonyms |= any(mask.kind == "pseudonym" for mask in grant.masks.values())
        return cls(
            tables,
            frozenset(grant.scope for grants in by_table.values() for grant in grants),
            tuple(sorted(needed)),
            pseudonyms,
            _digest(sorted((k, sorted(t.columns), sorted(t.via or ()), sorted(t.plain)) for k, t in tables.items())),
        )


def full_access(catalog: Catalog) -> Access:
    """Everything in the catalog, unrewritten (authentication switched off: development only)."""
    tables = {
        (department.name, table.name): TableAccess(
            frozenset(column.name for column in table.columns), plain=frozenset(column.name for column in table.columns)
        )
        for department in catalog.departments
        for table in department.tables
    }
    return Access(tables, unrestricted=True, key="unrestricted", visibility_key="all")


class Policy:
    """The validated policy file."""

    def __init__(
        self,
        document: PolicyDocument,
        catalog: Catalog,
        grants: Mapping[str, tuple[CompiledGrant, ...]],
        *,
        version: str,
        secrets: PolicySecrets | None = None,
        pseudonym_recipient: str = "client_id",
    ) -> None:
        self.document = document
        self.catalog = catalog
        self.version = version
        self.secrets = secrets or PolicySecrets.ephemeral_secret()
        self.pseudonym_recipient = pseudonym_recipient
        self.scopes: dict[str, ScopeDefinition] = {scope.name: scope for scope in document.scopes}
        self.compiled = grants
        self._scoped: LRUCache[frozenset[str], _ScopedGrants] = LRUCache(maxsize=1024)
        self._accesses: LRUCache[Hashable, Access] = LRUCache(maxsize=10_000)

    def grants(self, scopes: Iterable[str]) -> Iterator[CompiledGrant]:
        for name in sorted(set(scopes)):
            yield from self.compiled.get(name, ())

    def grant_columns(self, grant: Grant) -> frozenset[str]:
        _, table = self.catalog.table(grant.table)
        if grant.columns == "*":
            return frozenset(column.name for column in table.columns)
        return frozenset(grant.columns)

    def access(self, principal: Principal) -> Access:
        """The union of the principal's scopes' grants (scopes fedgate does not know grant nothing).

        Computed once per set of scopes and attribute values, then remembered: principals that hold the
        same scopes and the same values of the attributes their grants use get the same :class:`Access`.
        """
        scoped = self._scoped.get(principal.scopes)
        if scoped is None:
            scoped = self._scoped[principal.scopes] = _ScopedGrants.of(self.grants(principal.scopes))
        attributes = {name: principal.attribute(name) for name in scoped.attributes}
        recipient = principal.attribute(self.pseudonym_recipient) if scoped.pseudonyms else None
        key: Hashable = principal.scopes
        if attributes or recipient is not None:
            key = (principal.scopes, _hashable(attributes), _hashable(recipient))
        access = self._accesses.get(key)
        if access is None:
            pseudonym_key = self.secrets.pseudonym_key(str(recipient)) if isinstance(recipient, str | int) else None
            access = self._accesses[key] = Access(
                scoped.tables,
                scoped.used,
                attributes,
                pseudonym_key,
                key=_digest([self.version, sorted(scoped.used), attributes, recipient]),
                visibility_key=scoped.visibility_key,
            )
        return access

    def grants_reading(self, department: str, table: str, column: str | None = None) -> list[CompiledGrant]:
        """The grants that let a holder read ``department.table`` (and ``column``, if given), by scope."""
        found = [
            grant
            for grants in self.compiled.values()
            for grant in grants
            if (grant.department, grant.table.name) == (department, table)
            and (column is None or column in grant.columns)
        ]
        return sorted(found, key=lambda grant: grant.scope)

    def scopes_granting(self, department: str, table: str, column: str | None = None) -> list[str]:
        """Scopes whose grants let a holder read ``department.table`` (and ``column``, if given)."""
        return sorted({grant.scope for grant in self.grants_reading(department, table, column)})


def policy_from_settings(settings: Settings, catalog: Catalog, secrets: PolicySecrets | None) -> Policy | None:
    """The policy the settings name (``None`` with authentication off), with its master secret (read and
    checked by :func:`gateway.configuration.load_configuration`; ``None`` for tools that never derive a key:
    the policy then holds a random one)."""
    path = settings.policy.path
    if not settings.auth.enabled or path is None:
        return None
    configured = settings.policy.secret_env is not None or settings.policy.secret_file is not None
    return load_policy(
        path,
        catalog,
        secrets=secrets,
        secret_configured=configured,
        pseudonym_recipient=settings.policy.pseudonym_recipient,
        attributes=settings.auth.principal_attributes(),
    )


def load_policy(
    path: Path,
    catalog: Catalog,
    *,
    secrets: PolicySecrets | None = None,
    secret_configured: bool = False,
    pseudonym_recipient: str = "client_id",
    attributes: Iterable[str] = (),
) -> Policy:
    """Load and validate a policy file against the catalog; raise :class:`ConfigError` listing every problem.

    Pseudonym masks need ``secret_configured``: pseudonyms must stay the same across restarts. Row filters
    may name only the built-in principal attributes and the ``attributes`` some issuer maps
    (:meth:`~gateway.auth.config.AuthSettings.principal_attributes`).
    """
    document = load_yaml(path)
    policy = validate(PolicyDocument, document)
    problems: list[tuple[Loc, str]] = []
    context = _Context(catalog, BUILTIN_ATTRIBUTES.union(attributes), problems)
    grants = {scope.name: tuple(_compile(scope, s_index, context)) for s_index, scope in enumerate(policy.scopes)}
    problems.extend(_duplicates(policy))
    if not secret_configured:
        problems.extend(_pseudonyms_without_secret(policy))
    if problems:
        raise ConfigError([document.issue(loc, reason) for loc, reason in problems])
    version = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return Policy(policy, catalog, grants, version=version, secrets=secrets, pseudonym_recipient=pseudonym_recipient)


def _pseudonyms_without_secret(policy: PolicyDocument) -> Iterator[tuple[Loc, str]]:
    for s_index, scope in enumerate(policy.scopes):
        for g_index, grant in enumerate(scope.grants):
            for name, text in grant.masks.items():
                if text.strip() == "pseudonym":
                    reason = "pseudonyms need a stable secret: set policy.secret_env or policy.secret_file"
                    yield ("scopes", s_index, "grants", g_index, "masks", name), reason


def _duplicates(policy: PolicyDocument) -> Iterator[tuple[Loc, str]]:
    seen: set[str] = set()
    for s_index, scope in enumerate(policy.scopes):
        if scope.name in seen:
            yield ("scopes", s_index, "name"), f"scope '{scope.name}' is defined more than once"
        seen.add(scope.name)
        tables: set[str] = set()
        for g_index, grant in enumerate(scope.grants):
            if grant.table in tables:
                yield (
                    ("scopes", s_index, "grants", g_index, "table"),
                    f"{grant.table} is granted twice; merge the grants",
                )
            tables.add(grant.table)


@dataclass(frozen=True)
class _Context:
    """What checking grants needs: the catalog, the attributes principals can carry, and the problems found."""

    catalog: Catalog
    attributes: frozenset[str]
    problems: list[tuple[Loc, str]]


def _compile(scope: ScopeDefinition, s_index: int, context: _Context) -> Iterator[CompiledGrant]:
    """Each grant checked against the catalog. What a grant's expressions may read (docs/policy.md):

    * a row filter: any column of its own table (a grant may filter on a column it does not show) and
      principal attributes some issuer maps; never another table;
    * a mask: only the column it masks, and constants (a mask reading another column would show that
      column's values under this one's name);
    * ``via``: relationships into this table; following one reads its join columns, which the caller must
      be able to read at both ends (the relationship field does not exist otherwise).
    """
    problems = context.problems
    for g_index, grant in enumerate(scope.grants):
        loc: Loc = ("scopes", s_index, "grants", g_index)
        try:
            department, table = context.catalog.table(grant.table)
        except KeyError:
            problems.append(((*loc, "table"), f"table '{grant.table}' is not in the catalog"))
            continue
        columns = set(table.columns_by_name) if grant.columns == "*" else set(grant.columns)
        for c_index, column in enumerate([] if grant.columns == "*" else grant.columns):
            if column not in table.columns_by_name:
                problems.append(((*loc, "columns", c_index), f"column '{column}' does not exist in {grant.table}"))
        row_filter = None
        if grant.row_filter is not None:
            try:
                row_filter = parse_condition(grant.row_filter, table)
            except PolicyExpressionError as error:
                problems.append(((*loc, "row_filter"), str(error)))
            else:
                problems.extend(((*loc, "row_filter"), reason) for reason in _unmapped(row_filter, context.attributes))
        masks: dict[str, Mask] = {}
        for name, text in grant.masks.items():
            if name not in columns or name not in table.columns_by_name:
                problems.append(((*loc, "masks", name), f"'{name}' is not one of the grant's columns"))
                continue
            try:
                mask = parse_mask(text, table, table.column(name))
            except PolicyExpressionError as error:
                problems.append(((*loc, "masks", name), str(error)))
                continue
            others = sorted(mask.expression.columns - {name}) if mask.expression is not None else []
            if others:
                reason = f"a mask may read only the column it masks ({name}); this one reads {', '.join(others)}"
                problems.append(((*loc, "masks", name), reason))
                continue
            masks[name] = mask
        for v_index, reference in enumerate(grant.via):
            problem = _check_via(reference, grant.table, context.catalog)
            if problem:
                problems.append(((*loc, "via", v_index), problem))
        yield CompiledGrant(
            scope.name, department.name, table, frozenset(columns & set(table.columns_by_name)), row_filter, masks,
            frozenset(grant.via),
        )  # fmt: skip


def _unmapped(expression: PolicyExpression, available: frozenset[str]) -> Iterator[str]:
    """A reason for each principal attribute the expression names that no principal can carry."""
    for name in sorted(expression.attributes - available):
        yield (
            f"':principal.{name}' is not an attribute any issuer maps (auth.issuers[].claims.attributes); "
            f"principals carry: {', '.join(sorted(available))}"
        )


def _check_via(reference: str, target: str, catalog: Catalog) -> str | None:
    department_name, table_name, name = reference.split(".")
    try:
        _, table = catalog.table(f"{department_name}.{table_name}")
    except KeyError:
        return f"table '{department_name}.{table_name}' is not in the catalog"
    relationship = next((r for r in table.relationships if r.name == name), None)
    if relationship is None:
        return f"{department_name}.{table_name} has no relationship '{name}'"
    if relationship.target != target:
        return f"{reference} leads to {relationship.target}, not {target}"
    return None
