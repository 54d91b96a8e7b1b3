"""Metrics under several worker processes: the directory they share, and what a dead worker leaves.

``fedgate serve --workers N`` creates a private directory (mode 0700) before starting any worker and
names it in :data:`~gateway.metrics_export.MULTIPROCESS_ENV`, which each worker inherits: prometheus-client
then keeps every worker's values in memory-mapped files there, and any worker answers a scrape from all
of them. When a worker dies (uvicorn starts another in its place) its live gauges' files are removed
(``mark_process_dead``), so its last readings stop counting; its counters stay, so totals never go
backwards. The directory is removed when the server stops, so every run starts from zero, as one process does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from socket import socket

from prometheus_client.multiprocess import mark_process_dead
from uvicorn.config import Config
from uvicorn.supervisors import Multiprocess

from gateway.metrics_export import MULTIPROCESS_ENV


@contextlib.contextmanager
def metrics_directory() -> Iterator[Path]:
    """A new private directory for the workers' metrics, named in the environment until the block ends,
    then removed."""
    directory = Path(tempfile.mkdtemp(prefix="fedgate-metrics-"))
    previous = os.environ.get(MULTIPROCESS_ENV)
    os.environ[MULTIPROCESS_ENV] = str(directory)
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_ENV, None)
        else:
            os.environ[MULTIPROCESS_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


class MetricsMultiprocess(Multiprocess):
    """uvicorn's supervisor, clearing the live gauges of every worker that is gone (died, replaced after a
    ``SIGHUP``, or retired by ``SIGTTOU``) after each of its checks."""

    def __init__(self, config: Config, sockets: list[socket], directory: Path) -> None:
        super().__init__(config, sockets)
        self.directory = directory
        self._known: set[int] = set()

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        running = {process.pid for process in self.processes if process.pid is not None}
        for pid in self._known - running:
            mark_process_dead(pid, str(self.directory))  # type: ignore[no-untyped-call]
        self._known = running
