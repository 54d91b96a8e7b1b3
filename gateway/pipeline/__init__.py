"""The pipeline from a validated operation to the statements each department runs, in sqlglot's
optimizer idiom: each stage a pure function returning a new plan, the passes in an ordered tuple.

    build   (gateway/pipeline/build.py)     operation → Plan: every root field planned by its kind
    PASSES, in order, each (Plan, Target) → Plan:
      protect  (gateway/pipeline/protect.py)  the caller's policy inside every statement
      subjects (gateway/pipeline/subjects.py) the audit's subject columns read the stored identifiers
      fuse     (gateway/pipeline/fuse.py)     statements a source can answer in one round trip, combined
    bind    (gateway/pipeline/bind.py)      Plan → BoundPlan: each statement prepared by its department's adapter
    execute (gateway/execution/executor.py) BoundPlan + variables → the answer

:func:`compile_plan` runs build and the passes; the gateway binds the result and caches it
(:mod:`gateway.service`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import DocumentNode, OperationDefinitionNode

from gateway.pipeline.build import build
from gateway.pipeline.fuse import fuse
from gateway.pipeline.protect import protect
from gateway.pipeline.subjects import subjects
from gateway.pipeline.target import Pass, Target
from gateway.plan.plan import Plan
from schema.gateway_schema import GatewaySchema

__all__ = ["PASSES", "Pass", "Target", "compile_plan"]

#: The passes between build and bind, in the order they run. Purposes, agreements and consent will be
#: further passes over the same plan.
PASSES: tuple[Pass, ...] = (protect, subjects, fuse)


def compile_plan(
    schema: GatewaySchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
    target: Target,
    passes: tuple[Pass, ...] = PASSES,
) -> Plan:
    """Build the plan of ``operation`` for ``target`` and run ``passes`` over it, in order."""
    plan = build(schema, document, operation, variables, target)
    for run_pass in passes:
        plan = run_pass(plan, target)
    return plan
