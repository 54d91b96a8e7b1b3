"""``python -m gateway``: the ``fedgate`` command."""

from gateway.cli import main

main()
