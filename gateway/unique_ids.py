"""Unique ids made without a system call: audit event ids and request ids.

``uuid.uuid4()`` asks the kernel for 16 random bytes each time (``getrandom``), which cost 15-20 µs a
request under load on the virtual machines fedgate was measured on. An id must never repeat; neither kind
need be secret (the audit's integrity is its hash chain and signed checkpoints, never its ids; a request id
only ties log lines and an event to a request). So each process draws a random 64-bit prefix and a random
key from the kernel once (and again in a child after ``fork``) and counts; both kinds are 32 hex digits,
like a UUID's:

* :func:`new_event_id`: the prefix and the count. Only readers of the audit see event ids, and their order
  helps them.
* :func:`new_request_id`: the count's 128-bit BLAKE2b hash under the process's key. Request ids are answered
  to every caller (``X-Request-Id``), and a count there would tell a caller how many requests the process
  served between two of its own; the hash tells nothing of it, and 128 bits make a repeat as unlikely as a
  UUID's.
"""

from __future__ import annotations

import hashlib
import itertools
import os


class _Ids:
    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.key = os.urandom(16)
        self.count = itertools.count()


_IDS = _Ids()
os.register_at_fork(after_in_child=_IDS.restart)


def new_event_id() -> str:
    """An id no other event of any process has."""
    return f"{_IDS.prefix}{next(_IDS.count):016x}"


def new_request_id() -> str:
    """An id no other request of any process has, which says nothing of how many came before it."""
    return hashlib.blake2b(next(_IDS.count).to_bytes(8, "big"), key=_IDS.key, digest_size=16).hexdigest()
