"""The root of fedgate's exception tree, and the configuration errors the catalog's loader raises.

It lives at the bottom layer (the catalog) so that every layer above raises into one tree:
``schema`` defines :class:`FedgateError` and :class:`ConfigError`, ``adapters`` the source errors
(:mod:`adapters.errors`), and :mod:`gateway.errors` the rest; :mod:`gateway.errors` re-exports them all,
so the gateway and its callers see one tree with one set of codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["ConfigError", "ConfigIssue", "FedgateError"]


class FedgateError(Exception):
    """Root of every error fedgate raises on purpose."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    #: HTTP status when the error ends the whole request (not used for field-level errors).
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def extensions(self) -> dict[str, Any]:
        """The ``extensions`` object of the GraphQL error: the stable code plus safe structured detail."""
        return {"code": self.code}


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration file: where it is and why it is wrong."""

    file: str
    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.reason}" if self.path else f"{where}: {self.reason}"


class ConfigError(FedgateError):
    """A configuration file (catalog, settings, policies) is invalid; start-up stops.

    Carries every issue found, not just the first, so an operator fixes the file in one pass.
    """

    code = "CONFIG_INVALID"

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        if len(self.issues) == 1:
            super().__init__(f"invalid configuration: {self.issues[0]}")
            return
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(f"invalid configuration ({len(self.issues)} problems):\n{lines}")
