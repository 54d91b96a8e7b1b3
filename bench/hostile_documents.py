"""Hostile query documents, each built to sit just inside (or just over) fedgate's default limits.

:func:`worst` builds each family from the limits it must keep, so that when a default changes the
documents follow; ``bench.hostile_clients`` times them, and sends some of them in a loop at a real server.
Field names are the demo catalog's (``demo/catalog.yaml``): ``health { patients { ... } }``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.limits import default

PATIENT = ("nhsNumber", "givenName", "familyName", "dateOfBirth", "sex", "postcode", "gpPracticeCode", "dateOfDeath")
SPELL = ("spellId", "nhsNumber", "providerCode", "admittedAt", "dischargedAt", "admissionMethod", "specialty")


@dataclass(frozen=True)
class Hostile:
    """A family of documents: its name, what it aims at, and the document (``fresh`` makes each one new)."""

    name: str
    aims_at: str
    build: Callable[[str], str]


def _limit(name: str) -> int:
    return default(f"graphql.max_{name}")


def _repeated_groups(fresh: str) -> str:
    """As many fields as allowed, every response name as often as allowed in one selection set, and the
    repeated relationship's selections merging into groups as large again, level after level (the
    overlapping-fields rule compares every pair in each group, and the pairs' selections)."""
    times = _limit("repeated_fields")
    budget = _limit("fields") - 2 - len(PATIENT) * times
    kinds: tuple[tuple[str, tuple[str, ...]], ...] = (("hospitalSpells", SPELL), ("patient", PATIENT))
    levels: list[tuple[str, tuple[str, ...]]] = []
    while len(levels) + 3 <= _limit("depth"):
        relationship, scalars = kinds[len(levels) % 2]
        if times * (len(scalars) + 1) > budget:
            break
        budget -= times * (len(scalars) + 1)
        levels.append((relationship, scalars))
    body = ""
    for relationship, scalars in reversed(levels[1:]):
        body = f"{relationship} {{ {' '.join(scalars)} {body} }}"
    first, scalars = levels[0]
    repeated = " ".join(f"{first} {{ {' '.join(scalars)} {body} }}" for _ in range(times))
    patient = " ".join(name for name in PATIENT for _ in range(times))
    return f"# {fresh}\n{{ health {{ patients {{ {patient} {repeated} }} }} }}"


def _fragment_pairs(fresh: str) -> str:
    """Every fragment allowed, each a few fields of Patient, all spread in one selection set and each
    spreading the next: graphql-core compares the fragments pairwise."""
    count = _limit("fragments")
    times = _limit("repeated_fields")
    names = [f"F{i}" for i in range(count)]
    definitions = []
    for i, name in enumerate(names):
        field = PATIENT[i % len(PATIENT)]
        following = f"...{names[i + 1]}" if i + 1 < count and i % 5 != 4 else ""
        definitions.append(f"fragment {name} on HealthPatient {{ {field} {following} }}")
    spreads = " ".join(f"...{name}" for name in names)
    assert count // len(PATIENT) + 1 <= times
    return f"# {fresh}\n{{ health {{ patients {{ {spreads} }} }} }} " + " ".join(definitions)


def _doubling(fresh: str) -> str:
    """Fragments that each spread the next one twice, as deep as the selections limit allows."""
    levels, size = 0, 1  # the last fragment's one field; each level above: a field, two inline fragments, two spreads
    while 3 + (5 + 2 * size) <= _limit("selections"):  # health, patients, the spread of D0
        size, levels = 5 + 2 * size, levels + 1
    definitions = [
        f"fragment D{i} on HealthPatient {{ nhsNumber {f'... on HealthPatient {{ ...D{i + 1} }} ' * 2}}}"
        for i in range(levels)
    ]
    definitions.append(f"fragment D{levels} on HealthPatient {{ givenName }}")
    return f"# {fresh}\n{{ health {{ patients {{ ...D0 }} }} }} " + " ".join(definitions)


def _variables(fresh: str) -> str:
    """As many variable definitions as the token limit allows, all unused but one."""
    count = (_limit("tokens") - 20) // 4
    definitions = " ".join(f"$v{i}: Int" for i in range(count))
    return f"# {fresh}\nquery({definitions}) {{ health {{ patients(limit: $v0) {{ nhsNumber }} }} }}"


def _directives(fresh: str) -> str:
    """As many directives on one field as the token limit allows."""
    count = (_limit("tokens") - 20) // 6
    return f"# {fresh}\n{{ health {{ patients {{ nhsNumber {'@include(if: true) ' * count} }} }} }}"


def _values(fresh: str) -> str:
    """As many values in one literal list as the token limit allows."""
    count = _limit("tokens") - 30
    values = ", ".join(f'"{i:010d}"' for i in range(count))
    return f"# {fresh}\n{{ health {{ patients(where: {{nhsNumber: {{in: [{values}]}}}}) {{ nhsNumber }} }} }}"


def _operations(fresh: str) -> str:
    """As many operations as the fields limit allows."""
    count = (_limit("fields") - 1) // 3
    return f"# {fresh}\n" + " ".join(f"query Q{i} {{ health {{ patients {{ nhsNumber }} }} }}" for i in range(count))


def _wide_tree(fresh: str) -> str:
    """A legitimate-looking query as large as the fields limit allows: every field of patients and of
    their spells, nested through the relationships, no repetition."""
    budget = _limit("fields") - 2
    spell = " ".join(SPELL)
    patient = " ".join(PATIENT)
    parts = []
    depth = 0
    while budget > len(PATIENT) + len(SPELL) + 3:
        alias = f"p{depth}: " if depth else ""
        parts.append(f"{alias}patients(limit: {depth + 1}) {{ {patient} hospitalSpells {{ {spell} }} }}")
        budget -= len(PATIENT) + len(SPELL) + 2
        depth += 1
        if depth >= _limit("aliases"):
            break
    return f"# {fresh}\n{{ health {{ {' '.join(parts)} }} }}"


LEGAL = (
    Hostile("repeated groups", "overlapping fields: pairs within groups", _repeated_groups),
    Hostile("fragment pairs", "overlapping fields: pairs of fragments", _fragment_pairs),
    Hostile("doubling fragments", "fragment expansion (fedgate's own walks)", _doubling),
    Hostile("variables", "variable rules", _variables),
    Hostile("directives", "directive rules", _directives),
    Hostile("literal list", "values of correct type", _values),
    Hostile("operations", "per-operation rules", _operations),
    Hostile("wide tree", "every rule, on a legitimate-looking query", _wide_tree),
)

OVER = (
    Hostile(
        "__typename x9000", "issue 14's document (99 KB)", lambda fresh: "{" + " __typename" * 9000 + f" }} # {fresh}"
    ),
    Hostile(
        "field x9000",
        "one field 9,000 times in a selection",
        lambda fresh: "{ health { patients { " + "nhsNumber " * 9000 + f"}} }} }} # {fresh}",
    ),
)
