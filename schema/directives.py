"""fedgate's own GraphQL directives, declared in every generated schema (so GraphiQL documents them).

``directive @strict on QUERY``: all or nothing. Without it, a department that fails gives ``null`` at its
paths while the others answer; with it, any department failing fails the whole operation (``data: null``
and one error per failed department). Being part of the document, it is part of every cache key.
"""

from __future__ import annotations

from graphql import DirectiveLocation, GraphQLDirective, OperationDefinitionNode, specified_directives
from graphql.execution.values import get_directive_values

STRICT = GraphQLDirective(
    name="strict",
    locations=[DirectiveLocation.QUERY],
    description=(
        "All or nothing: if any department fails (unavailable, timed out, circuit open...), the whole query "
        "fails with data null and one error per failed department, instead of null at that department's "
        "paths beside the others' data."
    ),
)

#: Every directive of a generated schema: GraphQL's own (@include, @skip, @deprecated...) and fedgate's.
DIRECTIVES: tuple[GraphQLDirective, ...] = (*specified_directives, STRICT)


def is_strict(operation: OperationDefinitionNode) -> bool:
    """Whether the (validated) operation carries ``@strict``."""
    return get_directive_values(STRICT, operation) is not None
