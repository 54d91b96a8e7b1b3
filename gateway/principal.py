"""Who is asking: the principal that travels with every request to planning, policy and audit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from gateway.policy.purposes import Purpose

#: Attributes every principal has, whatever the issuer maps: the policy may name them without a mapping.
BUILTIN_ATTRIBUTES = frozenset({"subject", "client_id", "issuer"})


@dataclass(frozen=True)
class Principal:
    """An authenticated caller (or the anonymous one when authentication is off), and why it is asking.

    ``attributes`` holds the claims the configuration maps onto the principal (organisation, role...);
    the full claim set is not kept. ``token`` is the bearer token as received, kept for one purpose only:
    a source configured for RFC 8693 token exchange sends it to its authorisation server (never to a
    department). It is excluded from ``repr`` and comparisons and never logged.
    """

    subject: str
    scopes: frozenset[str] = frozenset()
    client_id: str | None = None
    issuer: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    authenticated: bool = False
    token: SecretStr | None = field(default=None, repr=False, compare=False)
    #: When the credential stops being valid (seconds since the epoch), if it says.
    expires_at: float | None = field(default=None, compare=False)
    #: The purpose (and justification) the token's claims bind, as read: checked per request.
    bound_purpose: tuple[str, str | None] | None = field(default=None, repr=False)
    #: The request's checked purpose of use (set per request by the endpoint).
    purpose: Purpose | None = None

    def for_purpose(self, purpose: Purpose | None) -> Principal:
        """This principal asking for ``purpose``: a copy made field for field (``dataclasses.replace`` takes
        seven times as long, on every request)."""
        copy = object.__new__(Principal)
        copy.__dict__.update(self.__dict__)
        copy.__dict__["purpose"] = purpose
        return copy

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def attribute(self, name: str) -> Any:
        """A built-in attribute (:data:`BUILTIN_ATTRIBUTES`) or a mapped claim (``None`` when absent)."""
        if name == "subject":
            return self.subject
        if name == "client_id":
            return self.client_id
        if name == "issuer":
            return self.issuer
        return self.attributes.get(name)


ANONYMOUS = Principal(subject="anonymous")
