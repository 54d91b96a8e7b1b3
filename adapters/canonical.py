"""The dialect-neutral SQL vocabulary the gateway emits and SQL adapters render.

The planner builds every statement from sqlglot expressions plus the few nodes defined here, whose
meaning is fixed by fedgate rather than by any one database:

* :class:`BinaryText`: compare or sort this text by code point. SQLite already does; PostgreSQL needs
  ``COLLATE "C"`` for ordering; MariaDB's default collations are case-insensitive, so it needs
  ``COLLATE utf8mb4_bin`` everywhere. Without it the same query would give different answers from
  different departments.
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
