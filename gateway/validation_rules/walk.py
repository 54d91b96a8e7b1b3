"""Walking an operation's fields with fragments expanded, and the error the limit rules report.

Expansion is bounded: a visit stops as soon as its callback says the limit is exceeded, and a fragment
already being expanded on the current path is not expanded again (cycles are reported by
graphql-core's own ``NoFragmentCyclesRule``).
"""

from __future__ import annotations

from collections.abc import Callable

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
    ValidationContext,
)

from gateway.errors import QueryLimit, QueryLimitError

#: The root fields that read the caller's schema rather than data.
INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})

#: Called for each field with its depth (root fields are 1); returns True to stop the walk.
FieldVisitor = Callable[[FieldNode, int], bool]


def limit_exceeded(message: str, field: FieldNode, limit: QueryLimit) -> GraphQLError:
    """A ``QUERY_LIMIT_EXCEEDED`` error at ``field`` whose ``extensions.limit`` names the limit."""
    return GraphQLError(message, field, extensions={"code": QueryLimitError.code, "limit": limit.value})


def walk_fields(
    context: ValidationContext, selection_set: SelectionSetNode, visit: FieldVisitor, *, introspection: bool = True
) -> bool:
    """Visit every field under ``selection_set``; True if a visit asked to stop. With ``introspection``
    false, the fields inside ``__schema`` and ``__type`` are not visited (the fields themselves are)."""
    return _walk(context, selection_set, 1, visit, frozenset(), introspection)


def _walk(
    context: ValidationContext,
    selection_set: SelectionSetNode,
    depth: int,
    visit: FieldVisitor,
    expanding: frozenset[str],
    introspection: bool,
) -> bool:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if visit(selection, depth):
                return True
            inside = selection.selection_set
            if inside is None or (not introspection and selection.name.value in INTROSPECTION_ROOTS):
                continue
            if _walk(context, inside, depth + 1, visit, expanding, introspection):
                return True
        elif isinstance(selection, InlineFragmentNode):
            if _walk(context, selection.selection_set, depth, visit, expanding, introspection):
                return True
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = context.get_fragment(name)
            if fragment is None or name in expanding:
                continue
            if _walk(context, fragment.selection_set, depth, visit, expanding | {name}, introspection):
                return True
    return False
