"""The ``fedgate`` command."""

from __future__ import annotations

from gateway.cli import security, serving, tools
from gateway.cli.common import app

__all__ = ["app", "main", "security", "serving", "tools"]


def main() -> None:
    app()
