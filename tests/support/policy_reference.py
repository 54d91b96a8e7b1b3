"""A plain-Python reference for fedgate's documented policy semantics, sharing no code with the gateway.

Given rows, the grants a principal holds on a table (row predicate + masks) and the documented rules,
it computes what the caller must see; the tests compare the gateway's answers from every engine with it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

Row = dict[str, Any]
RANKS = {"show_last": 1, "show_first": 1, "month_only": 1, "round": 1, "year_only": 2, "postcode_district": 2,
         "sql": 3, "pseudonym": 4, "hash": 5, "redact": 6, "null": 7}  # fmt: skip


@dataclass
class RefGrant:
    columns: set[str]
    #: The row filter as a Python predicate (``None``: every row).
    admits_row: Callable[[Row], bool] | None = None
    masks: dict[str, str] = field(default_factory=dict)
    #: For sql(...) masks: the Python equivalent of the expression.
    sql: dict[str, Callable[[Row], Any]] = field(default_factory=dict)

    def admits(self, row: Row) -> bool:
        return self.admits_row is None or self.admits_row(row)


def derive(master: bytes, label: bytes) -> bytes:
    return hmac.new(master, label, hashlib.sha256).digest()


def pseudonym_key(master: bytes, recipient: str) -> bytes:
    return derive(master, b"fedgate pseudonym\x00" + recipient.encode())


def row_key(master: bytes, primary_key: Any) -> str:
    return hmac.new(derive(master, b"fedgate row key"), str(primary_key).encode(), hashlib.sha256).hexdigest()


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def mask_value(mask: str, value: Any, row: Row, grant: RefGrant, column: str, key: bytes | None) -> Any:
    kind, _, argument = mask.partition("(")
    argument = argument.rstrip(")")
    if kind == "null":
        return None
    if kind == "redact":
        return argument or "[REDACTED]"
    if kind == "sql":
        return grant.sql[column](row)
    if value is None:
        return None
    if kind == "show_last":
        return "****" + value[-int(argument) :]
    if kind == "show_first":
        return value[: int(argument)] + "****"
    if kind == "hash":
        return hashlib.sha256(_text(value).encode()).hexdigest()
    if kind == "pseudonym":
        return None if key is None else hmac.new(key, _text(value).encode(), hashlib.sha256).hexdigest()
    if kind in {"year_only", "month_only"}:
        month = 1 if kind == "year_only" else value.month
        if isinstance(value, dt.datetime):
            return dt.datetime(value.year, month, 1, tzinfo=dt.UTC)
        return dt.date(value.year, month, 1)
    if kind == "round":
        digits = int(argument)
        rounded = Decimal(_text(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
        if isinstance(value, float):
            return float(rounded)
        if isinstance(value, int):
            return int(rounded)
        return rounded
    if kind == "postcode_district":
        cleaned = value.strip(" ")
        if " " in cleaned:
            return cleaned[: cleaned.index(" ")]
        return cleaned[:-3] if len(cleaned) > 3 else cleaned
    raise AssertionError(mask)


def visible(rows: list[Row], grants: list[RefGrant], *, pseudonym: bytes | None = None) -> list[Row]:
    """The rows the caller sees, each with every granted column: least-masked among admitting grants."""
    columns = set().union(*(grant.columns for grant in grants)) if grants else set()
    seen = []
    for row in rows:
        admitting = [grant for grant in grants if grant.admits(row)]
        if not admitting:
            continue
        shown: Row = {"__raw__": row}
        for column in columns:
            candidates = [grant for grant in admitting if column in grant.columns]
            if not candidates:
                shown[column] = None
                continue
            best = min(candidates, key=lambda g: RANKS[g.masks[column].partition("(")[0]] if column in g.masks else 0)
            mask = best.masks.get(column)
            shown[column] = row[column] if mask is None else mask_value(mask, row[column], row, best, column, pseudonym)
        seen.append(shown)
    return seen


def shows_plainly(grants: list[RefGrant], column: str) -> bool:
    """Does the caller see the stored key on every row (then rows tie-break on it, else on a keyed hash)?

    Yes when every grant shows it unmasked, or a grant admitting every row does.
    """
    everywhere = all(column in g.columns and column not in g.masks for g in grants)
    unfiltered = any(g.admits_row is None and column in g.columns and column not in g.masks for g in grants)
    return everywhere or unfiltered


def like(value: str | None, pattern: str) -> bool:
    """SQL LIKE with a backslash escape, case-sensitive; NULL matches nothing."""
    if value is None:
        return False
    regex, index = "", 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            regex += re.escape(pattern[index + 1])
            index += 2
            continue
        regex += ".*" if char == "%" else "." if char == "_" else re.escape(char)
        index += 1
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def matches(row: Row, where: Mapping[str, Any] | None) -> bool:
    """fedgate's ``where`` on already-masked values, with SQL's null rules (keys are column names)."""
    if not where:
        return True
    for key, value in where.items():
        if key == "and":
            if not all(matches(row, item) for item in value):
                return False
        elif key == "or":
            if not any(matches(row, item) for item in value):
                return False
        elif key == "not":
            if matches(row, value):
                return False
        else:
            cell = row[key]
            for operator, operand in value.items():
                if operator == "isNull":
                    if (cell is None) != operand:
                        return False
                    continue
                if cell is None or operand is None:
                    return False
                if operator == "in":
                    ok = cell in operand
                elif operator == "like":
                    ok = like(cell, operand)
                else:
                    ok = {"eq": cell == operand, "ne": cell != operand, "lt": cell < operand,
                          "lte": cell <= operand, "gt": cell > operand, "gte": cell >= operand}[operator]  # fmt: skip
                if not ok:
                    return False
    return True


def ordered(rows: list[Row], keys: list[tuple[str, str]], tie_break: Callable[[Row], Any]) -> list[Row]:
    """Sort by ``keys`` ((column, 'ASC'|'DESC'); ASC nulls last, DESC nulls first), then ``tie_break``."""
    result = sorted(rows, key=tie_break)
    for column, direction in reversed(keys):
        present = [row for row in result if row[column] is not None]
        absent = [row for row in result if row[column] is None]
        present.sort(key=lambda row: row[column], reverse=direction == "DESC")
        result = absent + present if direction == "DESC" else present + absent
    return result
