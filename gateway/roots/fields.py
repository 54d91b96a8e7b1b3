"""Root fields answered without asking any department: ``__typename`` and introspection.

Introspection (``__schema``, ``__type``) is answered by graphql-core's own executor from the caller's
schema, which shows only what the caller may query; the plan holds the part of the document that
asks for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import structlog
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    execute,
    visit,
)
from graphql.language import Visitor

from adapters.base import Capabilities
from gateway.errors import IntrospectionFailedError
from gateway.plan.nodes import ScanChange, ScanNode
from gateway.plan.run import Failure, Path, Run

log = structlog.get_logger("fedgate.gateway")


class NoStatements:
    """A field answered without asking any source: no statement, no rows, nothing for a pass to change."""

    def statements(self) -> list[ScanNode]:
        return []

    def cost(self, variables: Mapping[str, Any]) -> int:
        return 0

    def roles(self) -> dict[int, str]:
        return {}

    def map_scans(self, change: ScanChange) -> Self:
        return self

    def fused(self, capabilities: Mapping[str, Capabilities]) -> Self:
        return self


@dataclass(frozen=True)
class Typename(NoStatements):
    """``__typename``: a constant (at the root or in a namespace)."""

    response_key: str
    type_name: str

    async def execute(self, run: Run, path: Path) -> Any:
        return self.type_name


@dataclass(frozen=True)
class Introspection(NoStatements):
    """``__schema`` / ``__type`` at the root, answered by graphql-core from the caller's schema."""

    response_key: str
    schema: GraphQLSchema
    #: The operation reduced to this field, with the document's fragments.
    document: DocumentNode

    async def execute(self, run: Run, path: Path) -> Any:
        result = execute(self.schema, self.document, variable_values=dict(run.variables))
        assert isinstance(result, ExecutionResult)  # introspection resolvers are synchronous
        for error in result.errors or ():
            log.error("introspection_failed", field=self.response_key, error=error.message)
            failure = IntrospectionFailedError(error.message)
            run.fail(Failure(failure, path=tuple(error.path) if error.path else path))
        return (result.data or {}).get(self.response_key)


def introspection(
    response_key: str,
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    nodes: Sequence[FieldNode],
    fragments: Mapping[str, FragmentDefinitionNode],
) -> Introspection:
    """The introspection field ``response_key`` (its ``nodes``) of ``operation``, as a document of its own that
    declares only the variables it uses (their values are already coerced)."""
    used = _variables(nodes, fragments)
    document = DocumentNode(
        definitions=(
            OperationDefinitionNode(
                operation=operation.operation,
                name=operation.name,
                variable_definitions=tuple(
                    definition
                    for definition in operation.variable_definitions or ()
                    if definition.variable.name.value in used
                ),
                directives=(),
                selection_set=SelectionSetNode(selections=tuple(nodes)),
            ),
            *fragments.values(),
        )
    )
    return Introspection(response_key, schema, document)


def _variables(nodes: Sequence[FieldNode], fragments: Mapping[str, FragmentDefinitionNode]) -> set[str]:
    """Variables used in ``nodes`` and in the fragments they spread, however deeply."""
    found: set[str] = set()
    seen: set[str] = set()
    pending: list[Any] = list(nodes)

    class _Collector(Visitor):
        def enter_variable(self, node: VariableNode, *_: Any) -> None:
            found.add(node.name.value)

        def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
            name = node.name.value
            if name not in seen and name in fragments:
                seen.add(name)
                pending.append(fragments[name])

    while pending:
        visit(pending.pop(), _Collector())
    return found
