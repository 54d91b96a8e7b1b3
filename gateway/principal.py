"""Who is asking: the principal that travels with every request to planning, policy and audit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Principal:
    """An authenticated caller (or the anonymous one when authentication is off).

    ``attributes`` holds the claims the configuration maps onto the principal (organisation, role...);
    the token itself and its full claim set are never kept.
    """

    subject: str
    scopes: frozenset[str] = frozenset()
    client_id: str | None = None
    issuer: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    authenticated: bool = False

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


ANONYMOUS = Principal(subject="anonymous")
