"""Parsing and validating GraphQL documents, cached per (schema, document text).

Validation is graphql-core's (the specified rules plus fedgate's own, one rule per module in
:mod:`gateway.validation_rules`) and returns every error at once. Parse and validation are the
expensive, request-independent part of serving a query, so both successes and failures are cached,
in a bounded LRU, keyed by the schema the caller sees and the exact text.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    specified_rules,
    validate,
)

from gateway.errors import GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED


@dataclass(frozen=True)
class ParsedDocument:
    """A document that parsed and validated, with its operations by name."""

    document: DocumentNode
    operations: dict[str | None, OperationDefinitionNode]


@dataclass(frozen=True)
class DocumentErrors:
    """A document that did not parse or validate: the errors, formatted, each with a stable code."""

    errors: tuple[dict[str, Any], ...]


def _formatted(error: GraphQLError, code: str) -> dict[str, Any]:
    formatted: dict[str, Any] = {"message": error.message}
    if error.locations:
        formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    extensions = dict(error.extensions or {})
    extensions.setdefault("code", code)
    formatted["extensions"] = extensions
    return formatted


class DocumentCache:
    """Parse + validate with a bounded cache; one per gateway (shared by every schema)."""

    def __init__(
        self,
        *,
        size: int,
        max_tokens: int,
        extra_rules: Sequence[type[ASTValidationRule]] = (),
    ) -> None:
        self._cache: LRUCache[tuple[Hashable, str], ParsedDocument | DocumentErrors] | None = (
            LRUCache(maxsize=size) if size > 0 else None
        )
        self._max_tokens = max_tokens
        self._rules = (*specified_rules, *extra_rules)

    def get(self, schema_key: Hashable, schema: GraphQLSchema, text: str) -> ParsedDocument | DocumentErrors:
        """The parsed document, validated against ``schema``; ``schema_key`` identifies that schema stably."""
        key = (schema_key, text)
        cached = self._cache.get(key) if self._cache is not None else None
        if cached is not None:
            return cached
        result = self._load(schema, text)
        if self._cache is not None:
            self._cache[key] = result
        return result

    def _load(self, schema: GraphQLSchema, text: str) -> ParsedDocument | DocumentErrors:
        try:
            document = parse(text, max_tokens=self._max_tokens)
        except GraphQLError as error:
            return DocumentErrors((_formatted(error, GRAPHQL_PARSE_FAILED),))
        errors = validate(schema, document, self._rules)
        if errors:
            return DocumentErrors(tuple(_formatted(error, GRAPHQL_VALIDATION_FAILED) for error in errors))
        operations = {
            (definition.name.value if definition.name else None): definition
            for definition in document.definitions
            if isinstance(definition, OperationDefinitionNode)
        }
        return ParsedDocument(document, operations)
