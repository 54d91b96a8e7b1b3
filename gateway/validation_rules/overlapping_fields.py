"""Rule: graphql-core's ``OverlappingFieldsCanBeMergedRule``, with ``graphql.max_field_comparisons`` as its budget.

The rule compares every pair of fields that share a response name in one selection set (fragments
merged), the selections of each such pair, and every pair of fragments spread together: quadratic in
a group, and more through fragments. graphql-core meters that work itself and aborts validation when
its budget runs out, but its budget (500,000 units) is a second or more of CPU on the event loop. This
rule is graphql-core's with the configured budget instead, and reports running out as
``QUERY_LIMIT_EXCEEDED`` naming ``field_comparisons``. :mod:`gateway.document_shape` refuses most such
documents earlier and more legibly (``repeated_fields``); this budget bounds what is left.
"""

from __future__ import annotations

from typing import Any

from graphql import OverlappingFieldsCanBeMergedRule, ValidationContext
from graphql.validation.validate import ValidationAbortedError

from gateway.errors import QueryLimit, QueryLimitError


def bounded_overlapping_fields_rule(budget: int) -> type[OverlappingFieldsCanBeMergedRule]:
    class BoundedOverlappingFieldsRule(OverlappingFieldsCanBeMergedRule):
        """graphql-core's rule with ``budget`` units of work (a comparison of two fields costs two)."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.rule_context.remaining_complexity_budget = budget

        def enter_selection_set(self, *args: Any) -> None:
            try:
                super().enter_selection_set(*args)
            except ValidationAbortedError:
                if self.rule_context.remaining_complexity_budget >= 0:
                    raise  # not the budget: graphql-core's limit on the number of errors
                message = f"checking that the document's fields can be merged takes more than {budget} steps"
                extensions = QueryLimitError(message, limit=QueryLimit.FIELD_COMPARISONS).extensions()
                raise ValidationAbortedError(message, extensions=extensions) from None

    return BoundedOverlappingFieldsRule
