"""Column masks: one vocabulary, one canonical expression each, rendered by every dialect.

=================== ============================== ====================================================
mask                column types                   what the caller sees
=================== ============================== ====================================================
``null``            any                            null
``redact``          text                           ``[REDACTED]`` (or ``redact(text)``), for every row
``show_last(n)``    text                           ``****`` and the last *n* characters
``show_first(n)``   text                           the first *n* characters and ``****``
``hash``            text                           SHA-256 of the value (hex): the same everywhere
``pseudonym``       text                           HMAC-SHA-256 with the recipient's own key (hex)
``year_only``       date, datetime                 the first day of the year
``month_only``      date, datetime                 the first day of the month
``round(n)``        integer, float, decimal        rounded to *n* places (negative: tens, hundreds)
``postcode_district`` text                         the outward code, case as stored: ``LS6 2AB`` → ``LS6``
``sql(expr)``       any                            a checked expression over the row's columns
=================== ============================== ====================================================

Masks are ranked from least to most masking; when several grants admit a row, the caller sees the
least-masked value among them. All masks are total: they never raise, whatever the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from sqlglot import exp

from adapters.canonical import HmacSha256Hex, RoundHalfUp, Sha256Hex, ShowFirst, ShowLast, TruncateDate, TypedNull
from gateway.policy.expressions import PolicyExpression, PolicyExpressionError, parse_value
from schema.catalog import Column, Table
from schema.types import ColumnType

_TEXT = {ColumnType.STRING}
_DATES = {ColumnType.DATE, ColumnType.DATETIME}
_NUMBERS = {ColumnType.INTEGER, ColumnType.FLOAT, ColumnType.DECIMAL}
_ANY = set(ColumnType)

#: (column types it applies to, rank: lower is less masking, argument: None | "int" | "text" | "sql")
_KINDS: dict[str, tuple[set[ColumnType], int, str | None]] = {
    "show_last": (_TEXT, 1, "int"),
    "show_first": (_TEXT, 1, "int"),
    "month_only": (_DATES, 1, None),
    "round": (_NUMBERS, 1, "int"),
    "year_only": (_DATES, 2, None),
    "postcode_district": (_TEXT, 2, None),
    "sql": (_ANY, 3, "sql"),
    "pseudonym": (_TEXT, 4, None),
    "hash": (_TEXT, 5, None),
    "redact": (_TEXT, 6, "text?"),
    "null": (_ANY, 7, None),
}
_SYNTAX = re.compile(r"^\s*(?P<kind>[a-z_]+)\s*(?:\((?P<argument>.*)\))?\s*$", re.DOTALL)
REDACTED = "[REDACTED]"


class MaskContext(Protocol):
    """What applying a mask needs from the statement being built."""

    def pseudonym_key(self) -> tuple[exp.Expr, exp.Expr]:
        """Placeholders for the recipient's pseudonym key XOR ipad and XOR opad."""


@dataclass(frozen=True)
class Mask:
    """A parsed, checked mask for one column."""

    kind: str
    number: int | None = None
    text: str | None = None
    expression: PolicyExpression | None = None

    @property
    def rank(self) -> int:
        return _KINDS[self.kind][1]

    def describe(self) -> str:
        if self.kind == "sql" and self.expression is not None:
            return f"sql({self.expression.text})"
        argument = self.number if self.number is not None else self.text
        return self.kind if argument is None else f"{self.kind}({argument})"

    def apply(self, value: exp.Expr, column: Column, alias: str, context: MaskContext) -> exp.Expr:
        """The masked form of ``value`` (the column, qualified by ``alias``)."""
        count = exp.Literal.number(self.number or 0)
        if self.kind == "null":
            return TypedNull(kind=column.type.value)
        if self.kind == "redact":
            return exp.Literal.string(self.text or REDACTED)
        if self.kind == "show_last":
            return ShowLast(this=value, count=count)
        if self.kind == "show_first":
            return ShowFirst(this=value, count=count)
        if self.kind == "hash":
            return Sha256Hex(this=value)
        if self.kind == "pseudonym":
            inner, outer = context.pseudonym_key()
            return HmacSha256Hex(this=value, inner=inner, outer=outer)
        if self.kind in {"year_only", "month_only"}:
            unit = "year" if self.kind == "year_only" else "month"
            return TruncateDate(this=value, unit=unit, datetime=column.type is ColumnType.DATETIME)
        if self.kind == "round":
            return RoundHalfUp(this=value, digits=count)
        if self.kind == "postcode_district":
            return postcode_district(value)
        assert self.expression is not None
        return self.expression.bind(alias, lambda name, node: exp.null())


def postcode_district(value: exp.Expr) -> exp.Expr:
    """The outward code of a UK postcode: before the space, or all but the 3-character inward code.

    Case is kept as stored: engines disagree on upper-casing beyond ASCII, and a mask must mean the same
    thing on every engine.
    """
    cleaned = exp.Trim(this=value)
    space = exp.StrPosition(this=cleaned.copy(), substr=exp.Literal.string(" "))
    length = exp.Length(this=cleaned.copy())
    before_space = exp.Substring(this=cleaned.copy(), start=exp.Literal.number(1), length=exp.Sub(
        this=space.copy(), expression=exp.Literal.number(1)))  # fmt: skip
    without_inward = exp.Substring(this=cleaned.copy(), start=exp.Literal.number(1), length=exp.Sub(
        this=length.copy(), expression=exp.Literal.number(3)))  # fmt: skip
    return exp.Case(
        ifs=[
            exp.If(this=exp.GT(this=space, expression=exp.Literal.number(0)), true=before_space),
            exp.If(this=exp.GT(this=length, expression=exp.Literal.number(3)), true=without_inward),
        ],
        default=cleaned,
    )


def parse_mask(text: str, table: Table, column: Column) -> Mask:
    """Parse ``text`` for ``column``; :class:`PolicyExpressionError` explains any problem."""
    match = _SYNTAX.match(text)
    if match is None or match["kind"] not in _KINDS:
        raise PolicyExpressionError(f"unknown mask '{text}'; masks are: {', '.join(sorted(_KINDS))}")
    kind, argument = match["kind"], match["argument"]
    types, _, expected = _KINDS[kind]
    if column.type not in types:
        allowed = ", ".join(sorted(t.value for t in types))
        raise PolicyExpressionError(f"{kind} applies to {allowed} columns, and {column.name} is {column.type.value}")
    if expected is None and argument is not None:
        raise PolicyExpressionError(f"{kind} takes no argument")
    if expected == "int":
        try:
            number = int(argument or "")
        except ValueError:
            raise PolicyExpressionError(f"{kind} needs a whole number, e.g. {kind}(4)") from None
        low, high = (-15, 15) if kind == "round" else (1, 100)
        if not low <= number <= high:
            raise PolicyExpressionError(f"{kind}'s argument must be between {low} and {high}")
        return Mask(kind, number=number)
    if expected == "text?":
        return Mask(kind, text=argument.strip() if argument else None)
    if expected == "sql":
        if not argument:
            raise PolicyExpressionError("sql(...) needs an expression")
        return Mask(kind, expression=parse_value(argument, table))
    return Mask(kind)
