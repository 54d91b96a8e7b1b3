"""JSON for security decisions: a parser that refuses what another parser could read differently.

RFC 8259 leaves duplicate member names to the implementation, and implementations disagree: most keep
the last, some the first, some refuse. A token whose payload says ``"scope"`` twice means one thing to
the issuer that signed it (or to a proxy that inspected it) and another to fedgate. RFC 7515 §5.2 and
RFC 7519 §4 let a verifier refuse such a document, and fedgate does, for every JSON it trusts: JWT
headers and claim sets, introspection answers, JWKS and discovery documents. ``NaN`` and ``Infinity``,
which are not JSON at all, are refused too.

The refusal is made by the parser itself (``object_pairs_hook``), never by a check afterwards: there is
no moment at which a duplicated member has already been collapsed into one.
"""

from __future__ import annotations

import json
from typing import Any


class StrictJSONError(ValueError):
    """The text is not JSON, or it repeats a member name in an object, or it uses NaN or Infinity."""


class DuplicateMemberError(StrictJSONError):
    """An object in the document names the same member twice: the document is ambiguous."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            raise DuplicateMemberError("a JSON object repeats a member name")
        members[name] = value
    return members


def _constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not JSON")


class StrictDecoder(json.JSONDecoder):
    """:class:`json.JSONDecoder` refusing duplicate member names and non-JSON constants."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.update(object_pairs_hook=_object, parse_constant=_constant)
        super().__init__(**kwargs)


def loads(document: str | bytes) -> Any:
    """Parse ``document``; :class:`StrictJSONError` (a ``ValueError``) for anything ambiguous or invalid."""
    try:
        return json.loads(document, cls=StrictDecoder)
    except StrictJSONError:
        raise
    except (ValueError, TypeError) as exc:  # JSONDecodeError, bad UTF-8, or bytes that are not text
        raise StrictJSONError("not valid JSON") from exc
