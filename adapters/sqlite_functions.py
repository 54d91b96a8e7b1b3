"""SQL functions fedgate registers on every SQLite connection, for masks SQLite cannot express.

Each mirrors its PostgreSQL and MariaDB rendering exactly (same text in, same text out) and is total:
it returns NULL rather than raising, so a mask can never fail on a row the caller may not see.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any


def _text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def sha256_hex(value: Any) -> str | None:
    if value is None:
        return None
    return hashlib.sha256(_text(value).encode("utf-8")).hexdigest()


def hmac_sha256_hex(inner: bytes | None, outer: bytes | None, value: Any) -> str | None:
    """HMAC from pre-padded keys: SHA-256(outer ‖ SHA-256(inner ‖ text)), as RFC 2104 defines it."""
    if value is None or inner is None or outer is None:
        return None
    digest = hashlib.sha256(bytes(inner) + _text(value).encode("utf-8")).digest()
    return hashlib.sha256(bytes(outer) + digest).hexdigest()


def round_half_up(value: Any, digits: Any) -> float | int | None:
    """Round the value's shortest decimal text to ``digits`` places, ties away from zero."""
    if value is None or digits is None:
        return None
    try:
        rounded = Decimal(_text(value)).quantize(Decimal(1).scaleb(-int(digits)), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return None
    return int(rounded) if int(digits) <= 0 else float(rounded)


FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "fedgate_sha256": (1, sha256_hex),
    "fedgate_hmac_sha256": (3, hmac_sha256_hex),
    "fedgate_round": (2, round_half_up),
}
