"""Event ids and request ids never repeat: within a process, and in a child forked from it. Request ids,
answered to every caller, do not count: consecutive ones share nothing."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable

import pytest

from gateway.unique_ids import new_event_id, new_request_id

KINDS = pytest.mark.parametrize("new_id", [new_event_id, new_request_id], ids=["event", "request"])


@KINDS
def test_ids_are_32_hex_digits_and_never_repeat(new_id: Callable[[], str]) -> None:
    ids = [new_id() for _ in range(100_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids[:100])
    assert len(set(ids)) == len(ids)


@KINDS
def test_a_forked_child_makes_ids_of_its_own(new_id: Callable[[], str]) -> None:
    parent = new_id()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(writer, new_id().encode())
        os._exit(0)
    os.close(writer)
    child = os.read(reader, 64).decode()
    os.close(reader)
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child[:16] != parent[:16]  # another prefix (or key): the child's count from 0 cannot repeat the parent's
    assert child != new_id()  # the parent's next id, at the count the child used: drawn with another prefix or key


def test_event_ids_count_and_request_ids_do_not() -> None:
    events = [int(new_event_id()[16:], 16) for _ in range(3)]
    assert events[1] - events[0] == 1 and events[2] - events[1] == 1
    requests = [int(new_request_id()[16:], 16) for _ in range(1000)]
    steps = {later - earlier for earlier, later in itertools.pairwise(requests)}
    assert len(steps) > 990  # no common step between consecutive ids, as a count would show
