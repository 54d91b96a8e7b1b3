"""The fuse pass: statements a source can answer in one round trip, combined.

Each root field combines what its kind allows (:meth:`~gateway.plan.plan.RootNode.fused`): a namespace
field's root scan takes in one child level on a source that joins laterally
(:mod:`gateway.roots.fusion`); an entity list reads its page of keys and their link rows as one
statement (:mod:`gateway.roots.entity.page_links`). Without this pass the plan answers the same, in
more round trips.
"""

from __future__ import annotations

from gateway.pipeline.target import Target
from gateway.plan.plan import Plan


def fuse(plan: Plan, target: Target) -> Plan:
    """``plan`` with each root field's statements combined where the target's sources allow."""
    return plan.map_roots(lambda root: root.fused(target.capabilities))
