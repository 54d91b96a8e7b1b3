"""What an entity field needs from the run of its plan: a :class:`ScanRun`.

The executor's run of a plan provides it; the entity execution (:mod:`gateway.execution.entities`,
:mod:`gateway.execution.entity_objects`) depends only on this interface, so it never imports the
executor that calls it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from adapters.base import Row
from gateway.execution.failures import Failure
from gateway.planning.plan import ScanNode


class ScanRun(Protocol):
    """The running plan, as seen by the statements of an entity field."""

    @property
    def variables(self) -> Mapping[str, Any]:
        """The operation's variables."""
        ...

    async def fetch(self, node: ScanNode, values: Mapping[str, Any]) -> list[Row]:
        """Rows of ``node`` run with its resolved parameter values, updated with ``values``."""
        ...

    def objects(self, node: ScanNode, rows: list[Row]) -> list[dict[str, Any]]:
        """One response object per row of ``node`` (child fields ``None`` until filled)."""
        ...

    async def children(self, node: ScanNode, rows: list[Row], objects: list[dict[str, Any]]) -> None:
        """Fill the child fields of ``objects``, made from ``rows`` of ``node``."""
        ...

    def residual_page(self, node: ScanNode, rows: list[Row]) -> list[Row]:
        """The per-parent page of ``rows`` that ``node``'s source could not apply itself."""
        ...

    def fail(self, failure: Failure) -> None:
        """Record a failure, reported as errors with the answer."""
        ...

    def note_keys_moved(self, node: ScanNode, keys_in: int, keys_out: int) -> None:
        """Record how many keys a semi-join step received and returned (``extensions.plan``)."""
        ...
