"""Rule: an operation may use at most ``graphql.max_aliases`` aliases (fragments expanded).

Aliases let one document ask for the same expensive field many times; counting them after expansion
also catches a fragment spread many times over.
"""

from __future__ import annotations

from typing import Any

from graphql import FieldNode, OperationDefinitionNode, ValidationRule

from gateway.errors import QueryLimit
from gateway.validation_rules.walk import limit_exceeded, walk_fields


def max_aliases_rule(limit: int) -> type[ValidationRule]:
    class MaxAliasesRule(ValidationRule):
        """Reports operations with more aliased fields than the limit."""

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            count = 0

            def over(field: FieldNode, depth: int) -> bool:
                nonlocal count
                if field.alias is None:
                    return False
                count += 1
                if count <= limit:
                    return False
                self.report_error(
                    limit_exceeded(f"the query uses more than {limit} aliases", field, QueryLimit.ALIASES)
                )
                return True

            walk_fields(self.context, node.selection_set, over)

    return MaxAliasesRule
