"""The loaded policy and what it lets one principal read, for one purpose, under the agreements in force.

:class:`Policy` is built once at start-up (and again on reload): every grant's row filter and masks are
parsed and checked against the catalog (:class:`~gateway.policy.access.CompiledGrant`), and the
information sharing agreements are loaded (:mod:`gateway.policy.agreements`). :meth:`Policy.access` turns
a principal (who, with which scopes and attributes, for which purpose) into an
:class:`~gateway.policy.access.Access`: the grants of its scopes, each as the agreements in force for its
organisation and purpose cover it (:mod:`gateway.policy.coverage`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cachetools import LRUCache

from gateway.errors import ConfigError
from gateway.policy.access import (
    Access,
    CompiledGrant,
    TableAccess,
    TableKey,
    digest,
    hashable_value,
    plain_columns,
)
from gateway.policy.agreements import Agreement, Agreements, InForce, load_agreements
from gateway.policy.coverage import covered_grants
from gateway.policy.expressions import PolicyExpression, PolicyExpressionError, parse_condition
from gateway.policy.masks import Mask, parse_mask
from gateway.policy.model import Grant, PolicyDocument, ScopeDefinition
from gateway.policy.secrets import PolicySecrets
from gateway.principal import BUILTIN_ATTRIBUTES, Principal
from gateway.settings import Settings
from schema.catalog import Catalog
from schema.configfile import Loc, load_yaml, validate


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class _ScopedGrants:
    """What a set of scopes grants, before any principal's attribute values are applied."""

    tables: Mapping[TableKey, TableAccess]
    used: frozenset[str]
    #: The principal attributes the grants' row filters use, sorted.
    attributes: tuple[str, ...]
    pseudonyms: bool
    visibility_key: str
    #: Tables the scopes grant that no agreement in force covers for the purpose (with agreements).
    uncovered: frozenset[TableKey] = frozenset()

    @classmethod
    def of(cls, grants: Iterable[CompiledGrant], uncovered: frozenset[TableKey] = frozenset()) -> _ScopedGrants:
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
            digest(sorted((k, sorted(t.columns), sorted(t.via or ()), sorted(t.plain)) for k, t in tables.items())),
            uncovered,
        )


class Policy:
    """The validated policy file, and the agreements access is covered by (``None``: scopes alone decide)."""

    def __init__(
        self,
        document: PolicyDocument,
        catalog: Catalog,
        grants: Mapping[str, tuple[CompiledGrant, ...]],
        *,
        version: str,
        secrets: PolicySecrets | None = None,
        pseudonym_recipient: str = "client_id",
        agreements: Agreements | None = None,
        organisation_attribute: str = "org_code",
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.document = document
        self.catalog = catalog
        self.version = version
        self.secrets = secrets or PolicySecrets.ephemeral_secret()
        self.pseudonym_recipient = pseudonym_recipient
        self.agreements = agreements
        self.organisation_attribute = organisation_attribute
        self.clock = clock
        self.scopes: dict[str, ScopeDefinition] = {scope.name: scope for scope in document.scopes}
        self.compiled = grants
        self._scoped: LRUCache[Hashable, _ScopedGrants] = LRUCache(maxsize=1024)
        self._accesses: LRUCache[Hashable, Access] = LRUCache(maxsize=10_000)

    def grants(self, scopes: Iterable[str]) -> Iterator[CompiledGrant]:
        for name in sorted(set(scopes)):
            yield from self.compiled.get(name, ())

    def grant_columns(self, grant: Grant) -> frozenset[str]:
        _, table = self.catalog.table(grant.table)
        if grant.columns == "*":
            return frozenset(column.name for column in table.columns)
        return frozenset(grant.columns)

    def permitted_purposes(self, scopes: Iterable[str]) -> frozenset[str]:
        """The purposes the holder of ``scopes`` may state (scopes fedgate does not know permit none)."""
        return frozenset(purpose for name in scopes if name in self.scopes for purpose in self.scopes[name].purposes)

    def access(self, principal: Principal, *, covered: bool = True) -> Access:
        """What ``principal`` may read: its scopes' grants (scopes fedgate does not know grant nothing), each as
        the agreements in force now cover it for the principal's organisation and purpose.

        ``covered=False`` gives the scopes' grants alone (to name the tables no agreement covers). Computed
        once per scopes, purpose, organisation, agreements in force and attribute values, then remembered.
        """
        purpose = principal.purpose.name if principal.purpose is not None else None
        in_force = self.agreements.in_force(self.clock()) if covered and self.agreements is not None else None
        organisation = principal.attribute(self.organisation_attribute) if in_force is not None else None
        context: list[object] = [] if in_force is None else [purpose, organisation, in_force.key]
        scoped_key: Hashable = principal.scopes
        if in_force is not None:
            scoped_key = (principal.scopes, purpose, hashable_value(organisation), in_force.key)
        scoped = self._scoped.get(scoped_key)
        if scoped is None:
            grants = self._scoped_grants(principal.scopes, in_force, purpose, organisation)
            scoped = self._scoped[scoped_key] = grants
        attributes = {name: principal.attribute(name) for name in scoped.attributes}
        recipient = principal.attribute(self.pseudonym_recipient) if scoped.pseudonyms else None
        key: Hashable = scoped_key
        if attributes or recipient is not None:
            key = (scoped_key, hashable_value(attributes), hashable_value(recipient))
        access = self._accesses.get(key)
        if access is None:
            pseudonym_key = self.secrets.pseudonym_key(str(recipient)) if isinstance(recipient, str | int) else None
            access = self._accesses[key] = Access(
                scoped.tables,
                scoped.used,
                attributes,
                pseudonym_key,
                key=digest([self.version, sorted(scoped.used), attributes, recipient, *context]),
                visibility_key=digest([scoped.visibility_key, *context]) if context else scoped.visibility_key,
                purpose=purpose,
                uncovered=scoped.uncovered,
            )
        return access

    def _scoped_grants(
        self, scopes: frozenset[str], in_force: InForce | None, purpose: str | None, organisation: object
    ) -> _ScopedGrants:
        """What ``scopes`` grant, each grant as the agreements ``in_force`` cover it (all of it without)."""
        granted = list(self.grants(scopes))
        if in_force is None:
            return _ScopedGrants.of(granted)
        covered = list(covered_grants(granted, in_force.agreements, organisation, purpose))
        uncovered = {(g.department, g.table.name) for g in granted} - {(g.department, g.table.name) for g in covered}
        return _ScopedGrants.of(covered, frozenset(uncovered))

    def agreements_used(self, access: Access, tables: Iterable[TableKey]) -> list[Agreement]:
        """The agreements whose coverage lets ``access`` read ``tables``, by id."""
        if self.agreements is None:
            return []
        used = {grant.agreement for table in tables for grant in access.table(*table).grants if grant.agreement}
        found = [self.agreements.by_id(agreement_id) for agreement_id, _ in sorted(used)]
        return [agreement for agreement in found if agreement is not None]

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
    vocabulary = [purpose.name for purpose in settings.purposes.vocabulary]
    attributes = settings.auth.principal_attributes()
    folder = settings.agreements.path
    return load_policy(
        path,
        catalog,
        secrets=secrets,
        secret_configured=configured,
        pseudonym_recipient=settings.policy.pseudonym_recipient,
        attributes=attributes,
        purposes=vocabulary,
        agreements=load_agreements(folder, catalog, vocabulary, attributes) if folder is not None else None,
        organisation_attribute=settings.agreements.organisation_attribute,
    )


def load_policy(
    path: Path,
    catalog: Catalog,
    *,
    secrets: PolicySecrets | None = None,
    secret_configured: bool = False,
    pseudonym_recipient: str = "client_id",
    attributes: Iterable[str] = (),
    purposes: Iterable[str] | None = None,
    agreements: Agreements | None = None,
    organisation_attribute: str = "org_code",
    clock: Callable[[], dt.datetime] = utc_now,
) -> Policy:
    """Load and validate a policy file against the catalog; raise :class:`ConfigError` listing every problem.

    Pseudonym masks need ``secret_configured``: pseudonyms must stay the same across restarts. Row filters
    may name only the built-in principal attributes and the ``attributes`` some issuer maps
    (:meth:`~gateway.auth.config.AuthSettings.principal_attributes`). The purposes a scope permits must be
    in the vocabulary ``purposes`` (when given). With ``agreements``, access is what they cover too.
    """
    document = load_yaml(path)
    policy = validate(PolicyDocument, document)
    problems: list[tuple[Loc, str]] = []
    context = _Context(catalog, BUILTIN_ATTRIBUTES.union(attributes), problems)
    grants = {scope.name: tuple(_compile(scope, s_index, context)) for s_index, scope in enumerate(policy.scopes)}
    problems.extend(_duplicates(policy))
    if purposes is not None:
        problems.extend(_unknown_purposes(policy, frozenset(purposes)))
    if not secret_configured:
        problems.extend(_pseudonyms_without_secret(policy))
    if problems:
        raise ConfigError([document.issue(loc, reason) for loc, reason in problems])
    version = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return Policy(
        policy, catalog, grants, version=version, secrets=secrets, pseudonym_recipient=pseudonym_recipient,
        agreements=agreements, organisation_attribute=organisation_attribute, clock=clock,
    )  # fmt: skip


def _unknown_purposes(policy: PolicyDocument, vocabulary: frozenset[str]) -> Iterator[tuple[Loc, str]]:
    for s_index, scope in enumerate(policy.scopes):
        for p_index, purpose in enumerate(scope.purposes):
            if purpose not in vocabulary:
                yield ("scopes", s_index, "purposes", p_index), f"'{purpose}' is not in the purpose vocabulary"


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
