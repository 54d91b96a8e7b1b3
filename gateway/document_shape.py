"""The parsed document's shape, checked before graphql-core validates it: linear work, no recursion.

Fragments multiply: a fragment spread twice in each of twenty fragments that spread the next one is a
million fields in a two-kilobyte document, and both graphql-core's overlapping-fields rule and fedgate's
own limit rules walk the document with fragments expanded. So before validation, and with each fragment
summed once (memoised, in the order of the spread graph):

* ``selections``: the fields, fragment spreads and inline fragments of the document's operations (and of
  fragments no operation spreads), each fragment counted again wherever it is spread;
* ``repeated_fields``: the fields sharing one response name in one selection set, as graphql-core's
  overlapping-fields rule compares them: fragments and inline fragments merged into the selection set,
  and the selections of fields that share a response name merged too (the grouping Apollo's compiler
  validates in linear time). graphql-core compares every pair in such a group, so the group's size is
  what bounds its work.

Once ``selections`` is within its limit, the second count visits each expanded selection once. A
document whose fragments form a cycle is answered with graphql-core's ``NoFragmentCyclesRule`` alone
(expanding it is what must not happen).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from gateway.document_scan import DocumentLimits, over, repeated
from gateway.errors import QueryLimit, QueryLimitError


@dataclass(frozen=True)
class Shape:
    """What the shape check found: the first limit exceeded, or that the fragments form a cycle."""

    error: QueryLimitError | None = None
    cyclic: bool = False


def check_shape(document: DocumentNode, limits: DocumentLimits) -> Shape:
    """The first limit ``document`` exceeds with its fragments expanded (or its cycle), else an empty Shape."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    order = _spread_order(fragments)
    if order is None:
        return Shape(cyclic=True)
    sizes: dict[str, int] = {}
    for name in order:  # each fragment after every fragment it spreads
        sizes[name] = _size(fragments[name].selection_set, sizes)
    operations = [d.selection_set for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    spread = {
        node.name.value
        for root in (*operations, *(d.selection_set for d in fragments.values()))
        for node in _spreads(root)
    }
    roots = list(operations)
    roots += [d.selection_set for name, d in fragments.items() if name not in spread]
    total = 0
    for root in roots:
        total += _size(root, sizes)
        if total > limits.max_selections:
            message = f"the document has more than {limits.max_selections} selections with its fragments expanded"
            return Shape(over(QueryLimit.SELECTIONS, message))
    for root in roots:
        error = _repeated_fields(root, fragments, limits.max_repeated_fields)
        if error is not None:
            return Shape(error)
    return Shape()


def _spreads(selection_set: SelectionSetNode) -> Iterator[FragmentSpreadNode]:
    """Every fragment spread written under ``selection_set`` (not through other fragments)."""
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                yield selection
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set is not None:
                pending.append(selection.selection_set)


def _spread_order(fragments: dict[str, FragmentDefinitionNode]) -> list[str] | None:
    """The fragments, each after those it spreads (unknown names ignored), or None if they form a cycle."""
    uses = {name: {s.name.value for s in _spreads(d.selection_set)} & fragments.keys() for name, d in fragments.items()}
    order: list[str] = []
    state: dict[str, bool] = {}  # False: being visited, True: done
    for start in uses:
        if start in state:
            continue
        state[start] = False
        stack = [(start, iter(sorted(uses[start])))]
        while stack:
            name, following = stack[-1]
            step = next(following, None)
            if step is None:
                stack.pop()
                state[name] = True
                order.append(name)
            elif step not in state:
                state[step] = False
                stack.append((step, iter(sorted(uses[step]))))
            elif not state[step]:
                return None
    return order


def _size(selection_set: SelectionSetNode, sizes: dict[str, int]) -> int:
    """Selections under ``selection_set``, each spread counting its fragment's (unknown fragments: none)."""
    total = 0
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            total += 1
            if isinstance(selection, FragmentSpreadNode):
                total += sizes.get(selection.name.value, 0)
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set is not None:
                pending.append(selection.selection_set)
    return total


def _repeated_fields(
    root: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode], limit: int
) -> QueryLimitError | None:
    """The first response name shared by more than ``limit`` fields of one merged selection set."""
    pending: list[list[SelectionSetNode]] = [[root]]
    while pending:
        groups: dict[str, list[FieldNode]] = {}
        for field in _merged_fields(pending.pop(), fragments):
            group = groups.setdefault(field.alias.value if field.alias else field.name.value, [])
            group.append(field)
            if len(group) > limit:
                return repeated(field.alias.value if field.alias else field.name.value, limit)
        for group in groups.values():
            inside = [field.selection_set for field in group if field.selection_set is not None]
            if inside:
                pending.append(inside)
    return None


def _merged_fields(sets: list[SelectionSetNode], fragments: dict[str, FragmentDefinitionNode]) -> Iterator[FieldNode]:
    """The fields of ``sets`` taken together, inline fragments and fragment spreads expanded (each
    fragment once, as graphql-core collects fields)."""
    seen: set[str] = set()
    pending = list(sets)
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    pending.append(fragments[name].selection_set)
