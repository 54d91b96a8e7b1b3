"""How catalog names (snake_case SQL identifiers) become GraphQL names."""

from __future__ import annotations

import re

SQL_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
GRAPHQL_NAME = r"^[_A-Za-z][_0-9A-Za-z]*$"


def camel(name: str) -> str:
    """``date_of_birth`` → ``dateOfBirth`` (a leading underscore is kept)."""
    head, *rest = name.split("_")
    prefix = "_" if name.startswith("_") else ""
    if prefix:
        head, *rest = name.lstrip("_").split("_")
    return prefix + head + "".join(part[:1].upper() + part[1:] for part in rest)


def pascal(name: str) -> str:
    """``social_care`` → ``SocialCare``."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def constant(name: str) -> str:
    """``date_of_birth`` → ``DATE_OF_BIRTH`` (enum values)."""
    return name.upper()


def is_graphql_name(name: str) -> bool:
    return re.match(GRAPHQL_NAME, name) is not None
