"""Every limit a request can exceed, declared once: its name, the setting that changes it, its default,
and what it counts.

``gateway/settings.py`` takes each default from here; ``docs/security.md``'s table of limits is exactly
:func:`markdown_table` (``tests/test_limits.py`` checks it, and sends a request over each limit). Where a
limit is enforced (the endpoint, the parser, the validation rules, planning, the executor's cost check),
the refusal names it by its :class:`~gateway.errors.QueryLimit` (``extensions.limit``); the body's is
HTTP 413 ``REQUEST_TOO_LARGE``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import QueryLimit

#: The request body's limit, refused before the body is parsed (so it has no ``QueryLimit``).
BODY = "body"


@dataclass(frozen=True)
class RequestLimit:
    """One limit: ``extensions.limit``'s name for it, its setting (``section.key``), default and unit."""

    name: str
    setting: str
    default: int
    counts: str


REQUEST_LIMITS: tuple[RequestLimit, ...] = (
    RequestLimit(QueryLimit.DEPTH, "graphql.max_depth", 10,
                 "nesting of data fields, fragments expanded (not the fields inside `__schema` / `__type`: see below)"),
    RequestLimit(QueryLimit.ALIASES, "graphql.max_aliases", 30, "aliased fields, fragments expanded"),
    RequestLimit(QueryLimit.ROOT_FIELDS, "graphql.max_root_fields", 20,
                 "fields at the root and inside department namespaces"),
    RequestLimit(QueryLimit.COST, "graphql.max_cost", 200_000,
                 "most rows the pages asked for could return (page sizes multiplied down each nesting)"),
    RequestLimit(QueryLimit.PAGE_SIZE, "graphql.max_page_size", 1000, "a list field's `limit`"),
    RequestLimit(QueryLimit.OFFSET, "graphql.max_offset", 10_000,
                 "a list field's `offset` (a deep offset makes the source read and discard every row before it)"),
    RequestLimit(QueryLimit.IN_LIST, "graphql.max_in_list", 1000, "values in one `in` filter"),
    RequestLimit(QueryLimit.BATCH_SIZE, "graphql.max_batch_size", 10, "operations in one batched POST"),
    RequestLimit(QueryLimit.DOCUMENT_SIZE, "graphql.max_document_chars", 100_000, "characters of the query document"),
    RequestLimit(QueryLimit.TOKENS, "graphql.max_tokens", 2000,
                 "lexical tokens of the query document (comments included)"),
    RequestLimit(QueryLimit.FIELDS, "graphql.max_fields", 250,
                 "fields written in the document (fragments not expanded: see `selections`)"),
    RequestLimit(QueryLimit.REPEATED_FIELDS, "graphql.max_repeated_fields", 10,
                 "fields with one response name in one selection set, fragments and inline fragments merged, "
                 "and the selections of those fields merged in turn"),
    RequestLimit(QueryLimit.FRAGMENTS, "graphql.max_fragments", 50, "fragment definitions in the document"),
    RequestLimit(QueryLimit.VARIABLES, "graphql.max_variables", 50,
                 "variables written outside selection sets (the operations' variable definitions)"),
    RequestLimit(QueryLimit.DIRECTIVES, "graphql.max_directives", 100, "directives written in the document"),
    RequestLimit(QueryLimit.SELECTIONS, "graphql.max_selections", 1000,
                 "fields, fragment spreads and inline fragments of the document's operations, each fragment "
                 "counted again wherever it is spread"),
    RequestLimit(QueryLimit.FIELD_COMPARISONS, "graphql.max_field_comparisons", 5000,
                 "steps of graphql-core's check that fields sharing a response name can be merged (two per pair "
                 "of fields compared): its own budget, 500000 by default, is a second or more of CPU"),
    RequestLimit(BODY, "server.max_body_bytes", 1_000_000, "bytes of the request body (HTTP 413, `REQUEST_TOO_LARGE`)"),
)  # fmt: skip

_BY_SETTING = {limit.setting: limit for limit in REQUEST_LIMITS}


def default(setting: str) -> int:
    """The default of the limit set by ``setting`` (``"graphql.max_depth"``)."""
    return _BY_SETTING[setting].default


def markdown_table() -> str:
    """The table of limits as docs/security.md shows it."""
    rows = [f"| `{limit.name}` | `{limit.setting}` | {limit.default} | {limit.counts} |" for limit in REQUEST_LIMITS]
    return "\n".join(["| limit | setting | default | what is counted |", "| --- | --- | --- | --- |", *rows])
