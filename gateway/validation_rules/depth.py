"""Rule: fields may not nest deeper than ``graphql.max_depth`` (fragments expanded)."""

from __future__ import annotations

from typing import Any

from graphql import FieldNode, OperationDefinitionNode, ValidationRule

from gateway.errors import QueryLimit
from gateway.validation_rules.walk import limit_exceeded, walk_fields


def max_depth_rule(limit: int) -> type[ValidationRule]:
    class MaxDepthRule(ValidationRule):
        """Reports operations whose fields nest deeper than the limit."""

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            def too_deep(field: FieldNode, depth: int) -> bool:
                if depth <= limit:
                    return False
                self.report_error(
                    limit_exceeded(f"the query nests fields deeper than {limit} levels", field, QueryLimit.DEPTH)
                )
                return True

            walk_fields(self.context, node.selection_set, too_deep)

    return MaxDepthRule
