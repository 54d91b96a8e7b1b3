"""Rendering canonical statements (:mod:`adapters.canonical`) as SQL text for each dialect.

A :class:`SqlDialect` turns a :class:`~adapters.base.SourceQuery` into text the driver runs plus the
parameter values in the driver's binding style. Rendering is a pipeline of small pure
``Expression -> Expression`` rules (one tuple per dialect, applied in order), then sqlglot generation in
the source's dialect with comments off and ``unsupported_level=RAISE``: a construct the dialect cannot
express fails the query instead of silently changing its meaning. Values are never written into the
text; the SQL is generated from the expression tree once and never re-parsed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, ClassVar

from sqlglot import ErrorLevel, exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.dialects.postgres import Postgres
from sqlglot.dialects.sqlite import SQLite

from adapters.base import ParameterSpec, SourceQuery
from adapters.canonical import (
    BinaryText,
    HmacSha256Hex,
    RoundHalfUp,
    Sha256Hex,
    ShowFirst,
    ShowLast,
    TruncateDate,
    TypedNull,
    key_set_parameter,
)
from adapters.values import utc_naive
from schema.types import ColumnType

Rule = Callable[[exp.Expr, Mapping[str, ParameterSpec]], exp.Expr]
Encoder = Callable[[Any, ParameterSpec], Any]


class FedgateSQLite(SQLite):
    """SQLite as fedgate renders it (sqlglot's, with named ``:name`` placeholders)."""


class FedgatePostgres(Postgres):
    """PostgreSQL as fedgate renders it: placeholders are numbered ``$n`` for asyncpg."""


class FedgateMySQL(MySQL):
    """MariaDB/MySQL as fedgate renders it: ``?`` placeholders for server-side prepared statements.

    ``?`` is positional, so placeholders are first emitted as NUL-delimited markers, read back in text
    order to fix the binding order, and only then replaced by ``?``.
    """

    class Generator(MySQL.Generator):  # type: ignore[valid-type,misc]
        TRANSFORMS = {
            **MySQL.Generator.TRANSFORMS,
            exp.Placeholder: lambda self, e: f"\x00{e.name}\x00",
        }


_MARKER = re.compile(r"\x00(\w+)\x00")


@dataclass(frozen=True)
class Rendered:
    """Statement text plus the placeholder names in the order the driver binds them."""

    text: str
    names: tuple[str, ...]


def _generate(tree: exp.Expr, dialect: type) -> str:
    return tree.sql(dialect=dialect, identify=True, comments=False, unsupported_level=ErrorLevel.RAISE)


def _placeholder_names(tree: exp.Expr) -> tuple[str, ...]:
    return tuple(dict.fromkeys(node.name for node in tree.find_all(exp.Placeholder, bfs=False)))


def _key_sets(tree: exp.Expr, specs: Mapping[str, ParameterSpec]) -> list[tuple[exp.In, str]]:
    found = []
    for node in tree.find_all(exp.In):
        name = key_set_parameter(node)
        if name is not None and specs[name].is_list:
            found.append((node, name))
    return found


def _strip_binary_under_equality(tree: exp.Expr, specs: Mapping[str, ParameterSpec]) -> exp.Expr:
    """Equality is byte equality under PostgreSQL's deterministic collations: keep the index usable."""
    for node in list(tree.find_all(BinaryText)):
        if isinstance(node.parent, exp.EQ | exp.NEQ | exp.In):
            node.replace(node.this)
    return tree


def _collate(collation: exp.Expr) -> Rule:
    def rule(tree: exp.Expr, specs: Mapping[str, ParameterSpec]) -> exp.Expr:
        for node in list(tree.find_all(BinaryText)):
            node.replace(exp.Collate(this=node.this, expression=collation.copy()))
        return tree

    rule.__name__ = f"collate_{collation.name}"
    return rule


def _sqlite_key_sets(tree: exp.Expr, specs: Mapping[str, ParameterSpec]) -> exp.Expr:
    """``col IN :keys`` → ``col IN (SELECT value FROM json_each(:keys))``; the keys are bound as JSON."""
    for node, name in _key_sets(tree, specs):
        rows = exp.select("value").from_(
            exp.Table(this=exp.Anonymous(this="json_each", expressions=[exp.Placeholder(this=name)]))
        )
        node.replace(exp.In(this=node.this, query=rows.subquery()))
    return tree


_PG_TYPES = {
    ColumnType.STRING: "TEXT",
    ColumnType.INTEGER: "BIGINT",
    ColumnType.FLOAT: "DOUBLE PRECISION",
    ColumnType.DECIMAL: "NUMERIC",
    ColumnType.BOOLEAN: "BOOLEAN",
    ColumnType.DATE: "DATE",
    ColumnType.DATETIME: "TIMESTAMPTZ",
}


def _postgres_key_sets(tree: exp.Expr, specs: Mapping[str, ParameterSpec]) -> exp.Expr:
    """``col IN :keys`` → ``col = ANY(CAST(:keys AS <type>[]))``: one array parameter, one plan."""
    for node, name in _key_sets(tree, specs):
        array_type = exp.DataType.build(_PG_TYPES[specs[name].type] + "[]", dialect="postgres")
        cast = exp.Cast(this=exp.Placeholder(this=name), to=array_type)
        node.replace(exp.EQ(this=node.this, expression=exp.Any(this=exp.Paren(this=cast))))
    return tree


def _mysql_binary_equality(tree: exp.Expr, specs: Mapping[str, ParameterSpec]) -> exp.Expr:
    """``BINARY(col) = v`` → ``col = v AND col COLLATE <binary> = v``: the index narrows, binary decides.

    Sound whatever the column's own collation: equal code points are equal under every collation, so the
    loose comparison only ever admits a superset of the binary one.
    """
    for node in list(tree.find_all(exp.EQ, exp.In)):
        operand = node.this
        if isinstance(operand, BinaryText):
            loose = node.copy()
            loose.set("this", operand.this.copy())
            node.replace(exp.paren(exp.and_(loose, node.copy()), copy=False))
    return tree


# --- masks (adapters.canonical) rendered with each dialect's own functions ---------------------------

Builder = Callable[[exp.Expr], exp.Expr]


def _fn(name: str, *arguments: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(arguments))


def _text(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def _cast(value: exp.Expr, to: str, dialect: str) -> exp.Cast:
    return exp.Cast(this=value, to=exp.DataType.build(to, dialect=dialect))


def _date_format(node: exp.Expr) -> str:
    day = "%Y-01-01" if node.args["unit"] == "year" else "%Y-%m-01"
    return f"{day} 00:00:00" if node.args.get("datetime") else day


def _expand(builders: Mapping[type[exp.Expr], Builder]) -> Rule:
    """Replace each canonical mask node (innermost first) by the dialect's own expression."""

    def rule(tree: exp.Expr, specs: Mapping[str, ParameterSpec]) -> exp.Expr:
        for node in reversed(list(tree.find_all(*builders, bfs=False))):
            replacement = builders[type(node)](node)
            if node is tree:
                return replacement
            node.replace(replacement)
        return tree

    return rule


_MYSQL_TYPES = {
    ColumnType.STRING: "CHAR",
    ColumnType.INTEGER: "SIGNED",
    ColumnType.FLOAT: "DOUBLE",
    ColumnType.DECIMAL: "DECIMAL(65, 30)",
    ColumnType.BOOLEAN: "SIGNED",
    ColumnType.DATE: "DATE",
    ColumnType.DATETIME: "DATETIME(6)",
}


def _pg_utf8(node: exp.Expr) -> exp.Expr:
    return _fn("CONVERT_TO", _cast(node.this, "TEXT", "postgres"), _text("UTF8"))


def _pg_bytes(value: exp.Expr) -> exp.Expr:
    return _cast(value, "BYTEA", "postgres")


_POSTGRES_MASKS: dict[type[exp.Expr], Builder] = {
    Sha256Hex: lambda n: _fn("ENCODE", _fn("SHA256", _pg_utf8(n)), _text("hex")),
    HmacSha256Hex: lambda n: _fn(
        "ENCODE",
        _fn(
            "SHA256",
            exp.DPipe(
                this=_pg_bytes(n.args["outer"]),
                expression=_fn("SHA256", exp.DPipe(this=_pg_bytes(n.args["inner"]), expression=_pg_utf8(n))),
            ),
        ),
        _text("hex"),
    ),
    ShowLast: lambda n: exp.DPipe(this=_text("****"), expression=_fn("RIGHT", n.this, n.args["count"])),
    ShowFirst: lambda n: exp.DPipe(this=_fn("LEFT", n.this, n.args["count"]), expression=_text("****")),
    TruncateDate: lambda n: (
        _fn("DATE_TRUNC", _text(n.args["unit"]), n.this)
        if n.args.get("datetime")
        else _cast(_fn("DATE_TRUNC", _text(n.args["unit"]), n.this), "DATE", "postgres")
    ),
    RoundHalfUp: lambda n: _fn(
        "ROUND", _cast(_cast(n.this, "TEXT", "postgres"), "NUMERIC", "postgres"), n.args["digits"]
    ),
    TypedNull: lambda n: _cast(exp.null(), _PG_TYPES[ColumnType(n.args["kind"])], "postgres"),
}

_MYSQL_MASKS: dict[type[exp.Expr], Builder] = {
    Sha256Hex: lambda n: _fn("SHA2", _cast(n.this, "CHAR", "mysql"), exp.Literal.number(256)),
    # Key pads travel as hex text (UNHEX makes them binary): a raw byte parameter would be read as utf8mb4.
    HmacSha256Hex: lambda n: _fn(
        "SHA2",
        _fn(
            "CONCAT",
            _fn("UNHEX", n.args["outer"]),
            _fn(
                "UNHEX",
                _fn(
                    "SHA2",
                    _fn("CONCAT", _fn("UNHEX", n.args["inner"]), _cast(n.this, "CHAR", "mysql")),
                    exp.Literal.number(256),
                ),
            ),
        ),
        exp.Literal.number(256),
    ),
    ShowLast: lambda n: _fn("CONCAT", _text("****"), _fn("RIGHT", n.this, n.args["count"])),
    ShowFirst: lambda n: _fn("CONCAT", _fn("LEFT", n.this, n.args["count"]), _text("****")),
    TruncateDate: lambda n: _fn("DATE_FORMAT", n.this, _text(_date_format(n))),
    RoundHalfUp: lambda n: _fn(
        "ROUND", _cast(_cast(n.this, "CHAR", "mysql"), "DECIMAL(65, 30)", "mysql"), n.args["digits"]
    ),
    TypedNull: lambda n: _cast(exp.null(), _MYSQL_TYPES[ColumnType(n.args["kind"])], "mysql"),
}

#: SQLite has no SHA-256 and no exact decimal rounding: fedgate registers these functions on every
#: connection (adapters/sqlite_functions.py).
_SQLITE_MASKS: dict[type[exp.Expr], Builder] = {
    Sha256Hex: lambda n: _fn("fedgate_sha256", n.this),
    HmacSha256Hex: lambda n: _fn("fedgate_hmac_sha256", n.args["inner"], n.args["outer"], n.this),
    ShowLast: lambda n: exp.DPipe(this=_text("****"), expression=_fn("SUBSTR", n.this, exp.Neg(this=n.args["count"]))),
    ShowFirst: lambda n: exp.DPipe(
        this=_fn("SUBSTR", n.this, exp.Literal.number(1), n.args["count"]), expression=_text("****")
    ),
    TruncateDate: lambda n: _fn("STRFTIME", _text(_date_format(n)), n.this),
    RoundHalfUp: lambda n: _fn("fedgate_round", n.this, n.args["digits"]),
    TypedNull: lambda n: exp.null(),
}


_SQLITE_RULES: tuple[Rule, ...] = (_expand(_SQLITE_MASKS), _sqlite_key_sets, _collate(exp.Var(this="BINARY")))
_POSTGRES_RULES: tuple[Rule, ...] = (
    _expand(_POSTGRES_MASKS),
    _postgres_key_sets,
    _strip_binary_under_equality,
    _collate(exp.Identifier(this="C", quoted=True)),
)
#: Binary, NO PAD collations: code-point comparison in which trailing spaces count, as on SQLite and
#: PostgreSQL. ``utf8mb4_bin`` would not do: it is a PAD SPACE collation ('Bentley ' = 'Bentley').
MARIADB_BINARY = "utf8mb4_nopad_bin"
MYSQL_BINARY = "utf8mb4_0900_bin"


def _mysql_rules(collation: str) -> tuple[Rule, ...]:
    return (_expand(_MYSQL_MASKS), _mysql_binary_equality, _collate(exp.Var(this=collation)))


def apply_rules(query: SourceQuery, rules: tuple[Rule, ...]) -> exp.Expr:
    tree: exp.Expr = query.select.copy()
    for rule in rules:
        tree = rule(tree, query.parameters)
    return tree


class SqlDialect:
    """How one dialect renders statements and encodes parameter values for its driver."""

    name: ClassVar[str]
    sqlglot_dialect: ClassVar[type]
    rules: tuple[Rule, ...]

    def render(self, query: SourceQuery) -> Rendered:
        """Render the statement (for dialects whose text does not depend on the values bound)."""
        tree = apply_rules(query, self.rules)
        return Rendered(_generate(tree, self.sqlglot_dialect), _placeholder_names(tree))

    def encode(self, value: Any, spec: ParameterSpec) -> Any:
        """A canonical value as the driver expects it."""
        return value

    def placeholder(self, name: str, position: int) -> str:
        """How the parameter bound at ``position`` (from 1) is written in the statement text."""
        return f":{name}"


class SQLiteDialect(SqlDialect):
    """SQLite: named parameters; dates and datetimes as ISO text (UTC), key sets as JSON arrays."""

    name = "sqlite"
    sqlglot_dialect = FedgateSQLite
    rules = _SQLITE_RULES

    def encode(self, value: Any, spec: ParameterSpec) -> Any:
        if spec.binary:
            return value
        if spec.is_list:
            return json.dumps([self._scalar(item, spec.type) for item in value])
        return self._scalar(value, spec.type)

    @staticmethod
    def _scalar(value: Any, column_type: ColumnType) -> Any:
        if value is None:
            return None
        if column_type is ColumnType.DATETIME:
            return utc_naive(value).isoformat(sep=" ")
        if column_type is ColumnType.DATE:
            return value.isoformat()
        if column_type is ColumnType.DECIMAL:
            return float(value)
        if column_type is ColumnType.BOOLEAN:
            return int(value)
        return value


class PostgresDialect(SqlDialect):
    """PostgreSQL: ``$n`` parameters bound positionally; key sets as one typed array parameter."""

    name = "postgres"
    sqlglot_dialect = FedgatePostgres
    rules = _POSTGRES_RULES

    def render(self, query: SourceQuery) -> Rendered:
        """Placeholders become ``$1``, ``$2``... numbered in one pass; the names come back in that order."""
        tree = apply_rules(query, self.rules)
        names = _placeholder_names(tree)
        numbers = {name: number for number, name in enumerate(names, start=1)}
        for node in list(tree.find_all(exp.Placeholder)):
            node.replace(exp.Parameter(this=exp.Literal.number(numbers[node.name])))
        return Rendered(_generate(tree, self.sqlglot_dialect), names)

    def placeholder(self, name: str, position: int) -> str:
        return f"${position}"

    def encode(self, value: Any, spec: ParameterSpec) -> Any:
        if spec.type is ColumnType.DATETIME and value is not None:
            return [self._aware(item) for item in value] if spec.is_list else self._aware(value)
        return list(value) if spec.is_list else value

    @staticmethod
    def _aware(value: Any) -> Any:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class MySQLDialect(SqlDialect):
    """MariaDB/MySQL: positional ``?`` parameters (server-side prepared statements); a key set expands to
    one placeholder per key.

    To keep the number of distinct statement texts small, key sets are padded (repeating the last key)
    to the next power of two; an empty key set becomes ``FALSE``. Text is compared and sorted with a binary
    NO PAD ``collation``: :data:`MARIADB_BINARY` (the default) or, for MySQL 8, :data:`MYSQL_BINARY`.
    """

    name = "mysql"
    sqlglot_dialect = FedgateMySQL

    def __init__(self, collation: str = MARIADB_BINARY) -> None:
        self.collation = collation
        self.rules = _mysql_rules(collation)

    def render(self, query: SourceQuery) -> Rendered:
        return self.render_with_sizes(query, {})

    def render_with_sizes(self, query: SourceQuery, sizes: Mapping[str, int]) -> Rendered:
        """Render with each key set expanded to ``sizes[name]`` placeholders (``name_0``, ``name_1``...)."""
        tree: exp.Expr = query.select.copy()
        for node, name in _key_sets(tree, query.parameters):
            size = sizes.get(name, 1)
            if size == 0:
                node.replace(exp.false())
            else:
                node.set("expressions", [exp.Placeholder(this=f"{name}_{i}") for i in range(size)])
        for rule in self.rules:
            tree = rule(tree, query.parameters)
        for literal in tree.find_all(exp.Literal):
            if "\x00" in str(literal.this):
                raise ValueError("NUL characters cannot appear in SQL literals")
        text = _generate(tree, self.sqlglot_dialect)
        return Rendered(_MARKER.sub("?", text), tuple(_MARKER.findall(text)))

    def placeholder(self, name: str, position: int) -> str:
        return f"? #{position}"

    def encode(self, value: Any, spec: ParameterSpec) -> Any:
        if spec.binary:
            return None if value is None else bytes(value).hex()
        if spec.is_list:
            return [self._scalar(item, spec.type) for item in value]
        return self._scalar(value, spec.type)

    @staticmethod
    def _scalar(value: Any, column_type: ColumnType) -> Any:
        if value is not None and column_type is ColumnType.DATETIME:
            return utc_naive(value)
        return value


def padded_size(count: int) -> int:
    """The key-set size a MySQL statement is rendered for: the next power of two (0 stays 0)."""
    return 0 if count == 0 else 1 << (count - 1).bit_length()
