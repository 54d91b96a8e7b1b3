"""Audit event ids never repeat: within a process, and in a child forked from it."""

from __future__ import annotations

import os
import re

from gateway.audit.event_ids import new_event_id


def test_ids_are_32_hex_digits_and_never_repeat() -> None:
    ids = [new_event_id() for _ in range(100_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids[:100])
    assert len(set(ids)) == len(ids)


def test_a_forked_child_makes_ids_of_its_own() -> None:
    parent = new_event_id()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(writer, new_event_id().encode())
        os._exit(0)
    os.close(writer)
    child = os.read(reader, 64).decode()
    os.close(reader)
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child[:16] != parent[:16]  # another prefix: the child's count starting at 0 cannot repeat the parent's
    assert child != new_event_id()
