"""fedgate's own GraphQL validation rules, one per module, run with graphql-core's specified rules.

Each is configured with its limit (:func:`limit_rules`) and reports a ``QUERY_LIMIT_EXCEEDED`` error
whose ``extensions.limit`` names the limit, before anything is planned or executed.
"""

from __future__ import annotations

from graphql import ASTValidationRule, MaxIntrospectionDepthRule

from gateway.validation_rules.aliases import max_aliases_rule
from gateway.validation_rules.depth import max_depth_rule
from gateway.validation_rules.overlapping_fields import bounded_overlapping_fields_rule
from gateway.validation_rules.root_fields import max_root_fields_rule


def limit_rules(
    *, max_depth: int, max_aliases: int, max_root_fields: int, max_field_comparisons: int
) -> tuple[type[ASTValidationRule], ...]:
    """fedgate's limits, graphql-core's bound on introspection (the fields inside ``__schema`` are not
    counted by the depth limit) and its overlapping-fields rule with a budget (which replaces the
    specified one: see :class:`gateway.documents.DocumentCache`)."""
    return (
        bounded_overlapping_fields_rule(max_field_comparisons),
        max_depth_rule(max_depth),
        max_aliases_rule(max_aliases),
        max_root_fields_rule(max_root_fields),
        MaxIntrospectionDepthRule,
    )
