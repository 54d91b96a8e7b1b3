"""Rule: fields may not nest deeper than ``graphql.max_depth`` (fragments expanded).

The depth of data is counted, not of introspection: the fields inside ``__schema`` and ``__type`` read
the caller's own schema slice, and GraphiQL's standard introspection query nests ``ofType`` deeper than
any sensible data limit. Introspection is bounded by graphql-core's ``MaxIntrospectionDepthRule`` instead
(``fields``, ``interfaces``, ``possibleTypes`` and ``inputFields`` nested at most three deep), as Apollo
Router and Hasura let the standard query through while refusing the cyclic ones.
"""

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

            walk_fields(self.context, node.selection_set, too_deep, introspection=False)

    return MaxDepthRule
