"""Rule: at most ``graphql.max_root_fields`` fields at the root and inside department namespaces.

Each field inside a namespace (``health { patients ... patient ... }``) is a separate query against a
department, so those count as root fields too (fragments expanded).
"""

from __future__ import annotations

from typing import Any

from graphql import FieldNode, OperationDefinitionNode, ValidationRule

from gateway.errors import QueryLimit
from gateway.validation_rules.walk import limit_exceeded, walk_fields


def max_root_fields_rule(limit: int) -> type[ValidationRule]:
    class MaxRootFieldsRule(ValidationRule):
        """Reports operations that start more queries than the limit."""

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            count = 0
            in_introspection = False  # the walk is depth-first: depth-2 fields belong to the last root field

            def over(field: FieldNode, depth: int) -> bool:
                nonlocal count, in_introspection
                if depth == 1:
                    in_introspection = field.name.value.startswith("__")
                    if in_introspection or field.selection_set is not None:
                        return False  # introspection, or a namespace whose fields are the queries
                elif depth > 2 or in_introspection or field.name.value == "__typename":
                    return False
                count += 1
                if count <= limit:
                    return False
                self.report_error(
                    limit_exceeded(f"the query has more than {limit} root fields", field, QueryLimit.ROOT_FIELDS)
                )
                return True

            walk_fields(self.context, node.selection_set, over)

    return MaxRootFieldsRule
