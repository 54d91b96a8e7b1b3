"""Parsing and validating GraphQL documents, cached per (schema, document text).

Validation is graphql-core's (the specified rules plus fedgate's own, one rule per module in
:mod:`gateway.validation_rules`) and returns every error at once. Parse and validation are the
expensive, request-independent part of serving a query, so both successes and failures are cached,
in a bounded LRU, keyed by the schema the caller sees and the exact text.

The limits that protect the process come first, in order of cost: the document's characters, tokens,
fields, repeated fields and fragments on its tokens (:mod:`gateway.document_scan`, before parsing), then
its selections and repeated fields with fragments expanded (:mod:`gateway.document_shape`, before
validation). A document refused by the token scan is not cached: refusing it again costs less than the
cache entry, and hostile documents must not push callers' documents out of the cache.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    NoFragmentCyclesRule,
    OperationDefinitionNode,
    parse,
    specified_rules,
    validate,
)

from gateway.document_scan import DocumentLimits, scan
from gateway.document_shape import check_shape
from gateway.error_format import coded_error, graphql_error
from gateway.errors import GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, QueryLimit, QueryLimitError
from gateway.metrics import CacheCounter


@dataclass(frozen=True)
class ParsedDocument:
    """A document that parsed and validated, with its operations by name."""

    document: DocumentNode
    operations: dict[str | None, OperationDefinitionNode]


@dataclass(frozen=True)
class DocumentErrors:
    """A document that did not parse or validate: the errors, formatted, each with a stable code."""

    errors: tuple[dict[str, Any], ...]


#: graphql-core's "Did you mean ...?" tail (graphql.pyutils.did_you_mean): quoted names, at the end.
_NAME = r"'[_A-Za-z][_0-9A-Za-z]*'"
_SUGGESTION = re.compile(rf" Did you mean (?:[a-z]+(?: [a-z]+)* )?{_NAME}(?:(?:, |,? or ){_NAME})*\?$")


#: How graphql-core's parser ends the message when it stops at one of its limits.
_PARSER_LIMIT = "Parsing aborted."


def without_suggestions(message: str) -> str:
    """``message`` without graphql-core's "Did you mean ...?" suggestions (as Apollo Server hides them)."""
    return _SUGGESTION.sub("", message)


def _formatted(error: GraphQLError, code: str, suggestions: bool) -> dict[str, Any]:
    message = error.message if suggestions else without_suggestions(error.message)
    return coded_error(message, code, locations=error.locations, extensions=error.extensions)


class DocumentCache:
    """Parse + validate with a bounded cache; one per gateway (shared by every schema)."""

    def __init__(
        self,
        *,
        size: int,
        limits: DocumentLimits,
        extra_rules: Sequence[type[ASTValidationRule]] = (),
        suggestions: bool = False,
        name: str = "document",
    ) -> None:
        """``name``: the cache's name in ``fedgate_cache_lookups_total``."""
        self._cache: LRUCache[tuple[Hashable, str], ParsedDocument | DocumentErrors] | None = (
            LRUCache(maxsize=size) if size > 0 else None
        )
        self._limits = limits
        self._lookups = CacheCounter(name)
        self._suggestions = suggestions
        replaced = {base for rule in extra_rules for base in rule.__mro__[1:]}  # a subclass replaces its rule
        self._rules = (*(rule for rule in specified_rules if rule not in replaced), *extra_rules)

    @property
    def limits(self) -> DocumentLimits:
        """The limits checked before validation."""
        return self._limits

    @property
    def rules(self) -> tuple[type[ASTValidationRule], ...]:
        """The validation rules: graphql-core's specified ones (or fedgate's replacements) and fedgate's."""
        return self._rules

    def get(self, schema_key: Hashable, schema: GraphQLSchema, text: str) -> ParsedDocument | DocumentErrors:
        """The parsed document, validated against ``schema``; ``schema_key`` identifies that schema stably."""
        key = (schema_key, text)
        cached = self._cache.get(key) if self._cache is not None else None
        self._lookups.lookup(cached is not None)
        if cached is not None:
            return cached
        refusal = scan(text, self._limits)
        if refusal is not None:
            return DocumentErrors((graphql_error(refusal),))
        result = self._load(schema, text)
        if self._cache is not None:
            self._cache[key] = result
        return result

    def _load(self, schema: GraphQLSchema, text: str) -> ParsedDocument | DocumentErrors:
        try:
            document = parse(text, max_tokens=self._limits.max_tokens)
        except GraphQLError as error:
            if error.message.endswith(_PARSER_LIMIT):  # graphql-core's own bounds: too many tokens, too deep
                limit = QueryLimit.TOKENS if "tokens" in error.message else QueryLimit.DEPTH
                message = error.message.removesuffix(_PARSER_LIMIT).rstrip()
                return DocumentErrors((graphql_error(QueryLimitError(message, limit=limit)),))
            return DocumentErrors((_formatted(error, GRAPHQL_PARSE_FAILED, self._suggestions),))
        shape = check_shape(document, self._limits)
        if shape.error is not None:
            return DocumentErrors((graphql_error(shape.error),))
        errors = validate(schema, document, [NoFragmentCyclesRule] if shape.cyclic else self._rules)
        if errors:
            return DocumentErrors(
                tuple(_formatted(error, GRAPHQL_VALIDATION_FAILED, self._suggestions) for error in errors)
            )
        operations = {
            (definition.name.value if definition.name else None): definition
            for definition in document.definitions
            if isinstance(definition, OperationDefinitionNode)
        }
        return ParsedDocument(document, operations)
