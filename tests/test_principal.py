"""A principal asking for a purpose is a copy of it with that purpose: every other field the same (the token
too, which comparisons leave out), the original untouched, and still frozen."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import SecretStr

from gateway.policy.purposes import Purpose
from gateway.principal import Principal


def test_a_principal_for_a_purpose_is_the_same_caller_with_that_purpose() -> None:
    caller = Principal(
        subject="user-1", scopes=frozenset({"care"}), client_id="app", issuer="https://issuer",
        attributes={"org_code": "ORG-1"}, authenticated=True, token=SecretStr("t0ken"), expires_at=1.5,
        bound_purpose=("direct_care", None),
    )  # fmt: skip
    purpose = Purpose("direct_care", "token", "seen in clinic")
    asking = caller.for_purpose(purpose)
    assert asking == dataclasses.replace(caller, purpose=purpose)
    assert asking.purpose is purpose and caller.purpose is None
    assert asking.token is caller.token and asking.expires_at == 1.5  # fields comparisons leave out
    assert asking.for_purpose(None) == caller
    with pytest.raises(dataclasses.FrozenInstanceError):
        asking.purpose = None  # type: ignore[misc]
