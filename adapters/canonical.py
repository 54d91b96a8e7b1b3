"""The dialect-neutral SQL vocabulary the gateway emits and SQL adapters render.

The planner builds every statement from sqlglot expressions plus the few nodes defined here, whose
meaning is fixed by fedgate rather than by any one database:

* :class:`BinaryText`: compare or sort this text by code point, trailing spaces significant. SQLite
  already does; PostgreSQL needs ``COLLATE "C"`` for ordering; MariaDB's default collations are
  case-insensitive and pad with spaces, so it needs ``COLLATE utf8mb4_nopad_bin`` everywhere. Without
  it the same query would give different answers from different departments.
* a *key set*: ``exp.In(this=column, expressions=[placeholder])`` where the placeholder's
  :class:`~adapters.base.ParameterSpec` has ``is_list``. Each dialect renders it its own way
  (``= ANY($1)``, ``IN (SELECT value FROM json_each(?))``, an expanded ``IN (...)``) so the statement
  text does not depend on how many keys there are.

A node a dialect does not know how to render is a bug that must fail the query, never change its
meaning: rendering runs with sqlglot's ``unsupported_level`` set to raise, and these classes render as
functions that do not exist if a dialect forgets them.
"""

from __future__ import annotations

from sqlglot import exp


class BinaryText(exp.Expression, exp.Func):
    """Text compared and ordered by code point (binary collation), whatever the source's default."""

    arg_types = {"this": True}
    _sql_names = ["FEDGATE_BINARY_TEXT"]


def placeholder(name: str) -> exp.Placeholder:
    """A named parameter; its value is bound at execution, never written into the SQL text."""
    return exp.Placeholder(this=name)


def key_set(column: exp.Expr, parameter: str) -> exp.In:
    """``column IN <list parameter>``: rows whose ``column`` is one of the bound list's values."""
    return exp.In(this=column, expressions=[placeholder(parameter)])


def key_set_parameter(node: exp.In) -> str | None:
    """The list parameter's name if ``node`` is a key set, else ``None``."""
    values = node.expressions
    if len(values) == 1 and isinstance(values[0], exp.Placeholder) and not node.args.get("query"):
        return values[0].name
    return None


# --- masks: one node per transformation whose SQL differs between dialects -------------------------
#
# Each is total (never raises for any input, NULL in → NULL out) so that evaluating it on a row the
# caller may not see can never surface as an error. Every dialect renders every node; the same value
# comes out of each (tests/test_policy_conformance.py).


class Sha256Hex(exp.Expression, exp.Func):
    """Lower-case hex SHA-256 of the value's text (UTF-8)."""

    arg_types = {"this": True}
    _sql_names = ["FEDGATE_SHA256_HEX"]


class HmacSha256Hex(exp.Expression, exp.Func):
    """Lower-case hex HMAC-SHA-256 of the value's text, keyed by two bound parameters.

    ``inner`` and ``outer`` are placeholders holding the key XOR-ed with HMAC's ipad and opad (RFC 2104),
    so the hash needs only SHA-256 on every engine and the key itself is never sent.
    """

    arg_types = {"this": True, "inner": True, "outer": True}
    _sql_names = ["FEDGATE_HMAC_SHA256_HEX"]


class ShowLast(exp.Expression, exp.Func):
    """``'****'`` followed by the value's last ``n`` characters."""

    arg_types = {"this": True, "count": True}
    _sql_names = ["FEDGATE_SHOW_LAST"]


class ShowFirst(exp.Expression, exp.Func):
    """The value's first ``n`` characters followed by ``'****'``."""

    arg_types = {"this": True, "count": True}
    _sql_names = ["FEDGATE_SHOW_FIRST"]


class TruncateDate(exp.Expression, exp.Func):
    """A date (or datetime) moved to the first day of its ``unit`` ('year' or 'month')."""

    arg_types = {"this": True, "unit": True, "datetime": False}
    _sql_names = ["FEDGATE_TRUNCATE_DATE"]


class RoundHalfUp(exp.Expression, exp.Func):
    """The number rounded to ``digits`` decimal places (negative: tens, hundreds...), ties away from zero.

    Floats are rounded from their shortest decimal text, as every engine and Python agree on that text.
    """

    arg_types = {"this": True, "digits": True}
    _sql_names = ["FEDGATE_ROUND_HALF_UP"]


class TypedNull(exp.Expression, exp.Func):
    """NULL of a column type (``kind`` is a :class:`~schema.types.ColumnType` value), so comparisons type-check."""

    arg_types = {"kind": True}
    _sql_names = ["FEDGATE_TYPED_NULL"]
