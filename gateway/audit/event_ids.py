"""Audit event ids: unique, made without a system call.

``uuid.uuid4()`` asks the kernel for 16 random bytes each time (``getrandom``), which cost 15-20 µs a
request under load on the virtual machines fedgate was measured on. An event id must never repeat; it need
not be secret (the audit's integrity is its hash chain and signed checkpoints, never its ids), and only
readers of the audit see it. So each id is this process's random 64-bit prefix (drawn from the kernel once,
and again in a child after ``fork``) followed by a 64-bit count: 32 hex digits, like a UUID's.
"""

from __future__ import annotations

import itertools
import os


class _Ids:
    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.count = itertools.count()


_IDS = _Ids()
os.register_at_fork(after_in_child=_IDS.restart)


def new_event_id() -> str:
    """An id no other event of any process has."""
    return f"{_IDS.prefix}{next(_IDS.count):016x}"
