"""The ``fedgate`` command.

Commands of other packages join it through the ``fedgate.commands`` entry point group: each entry is a
function taking the Typer app (the demo's ``fedgate demo`` is one, :func:`demo.cli.register`), so the
gateway never imports them.

Operator errors end in :func:`gateway.cli.common.fail` (one line, exit 2). Anything else that escapes a
command is a fault in fedgate: :func:`main` prints one line naming it (the traceback only with
``FEDGATE_DEBUG=1``) and exits 70, so an operator never has to read a stack trace.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import entry_points

from gateway.cli import agreements, audit, run_commands, security, tools
from gateway.cli.common import app, errors

__all__ = ["agreements", "app", "audit", "main", "run_commands", "security", "tools"]

#: The entry point group of commands other packages add.
COMMANDS_GROUP = "fedgate.commands"


def _add_commands() -> None:
    for entry in entry_points(group=COMMANDS_GROUP):
        entry.load()(app)


_add_commands()

#: Set to 1 to see the traceback of an internal error.
DEBUG_ENV = "FEDGATE_DEBUG"
INTERNAL_ERROR = 70  # EX_SOFTWARE


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        errors.print(
            f"fedgate: internal error ({type(error).__name__}: {error}); this is a fault in fedgate, please "
            f"report it (set {DEBUG_ENV}=1 to see where it happened)",
            markup=False,
            highlight=False,
        )
        sys.exit(INTERNAL_ERROR)
