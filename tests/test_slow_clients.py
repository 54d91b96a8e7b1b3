"""Slow and surplus clients against a real ``fedgate serve``: every phase of a request has a deadline, and
connections are capped, in one process and in every worker of ``--workers N``.

A connection that sends nothing, half its headers, its headers a byte at a time, half its body, or its body a
byte at a time, and a kept-alive connection left idle, are each closed by the server within their timeout
(plus a margin for a loaded machine), while a well-behaved client keeps being answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from schema.catalog import Catalog
from tests.support.servers import established_connections, running_fedgate, worker_pids
from tests.support.slow_clients import (
    QUERY,
    Slow,
    SlowConnection,
    close_all,
    normal_client,
    open_slow,
    slow_clients,
    wait_closed,
)

TIMEOUT = 2  # server.header_timeout_seconds, body_timeout_seconds and keep_alive_seconds in these tests
MARGIN = 3.0  # seconds a loaded 2-core machine may add before the server's timer closes a connection
EARLY = 0.25  # a connection closed this much before its timeout was closed for another reason
SLOW_CLIENTS = 100
NORMAL_LATENCY_BOUND = 2.0  # seconds; a query here takes a few milliseconds


def _config(directory: Path, catalog: Catalog, **server: Any) -> Path:
    catalog_file = directory / "catalog.yaml"
    catalog_file.write_text(yaml.safe_dump(catalog.model_dump(mode="json", by_alias=True, exclude_none=True)))
    settings = {
        "catalog": str(catalog_file),
        "server": server,
        "auth": {"enabled": False},
        "logging": {"format": "json", "level": "warning"},
    }
    path = directory / "fedgate.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def _short_timeouts(directory: Path, catalog: Catalog) -> Path:
    timeouts = {"header_timeout_seconds": TIMEOUT, "body_timeout_seconds": TIMEOUT, "keep_alive_seconds": TIMEOUT}
    return _config(directory, catalog, **timeouts)


@pytest.fixture(scope="module")
def port(sqlite_clinic: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with running_fedgate(_short_timeouts(tmp_path_factory.mktemp("slow-clients"), sqlite_clinic)) as (port, _):
        yield port


def _assert_closed_in_time(connections: list[SlowConnection], kind: Slow) -> None:
    assert not any(c.refused for c in connections), "a connection under the cap was refused"
    still_open = [c for c in connections if c.closed_after is None]
    assert still_open == [], f"{len(still_open)} connections that {kind} were still open after {TIMEOUT + MARGIN} s"
    times = sorted(c.closed_after for c in connections if c.closed_after is not None)
    assert times[0] >= TIMEOUT - EARLY, f"closed after {times[0]:.2f} s, before the {TIMEOUT} s timeout"
    assert times[-1] <= TIMEOUT + MARGIN


def _answers(connections: list[SlowConnection]) -> set[bytes]:
    return {c.received.split(b"\r\n", 1)[0] for c in connections}


@pytest.mark.parametrize("kind", list(Slow))
async def test_slow_clients_are_closed_within_their_timeout_while_others_are_answered(port: int, kind: Slow) -> None:
    async with normal_client(port) as normal, slow_clients(port, kind, SLOW_CLIENTS) as connections:
        await wait_closed(connections, TIMEOUT + MARGIN)
    _assert_closed_in_time(connections, kind)
    if kind in (Slow.HALF_BODY, Slow.DRIPPING_BODY):  # a request had begun: it is answered 408, then closed
        assert _answers(connections) == {b"HTTP/1.1 408 Request Timeout"}
        body = orjson.loads(connections[0].received.split(b"\r\n\r\n", 1)[1])
        assert body["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
    elif kind is Slow.IDLE_KEPT_ALIVE:  # answered, then closed after keep_alive_seconds of silence
        assert _answers(connections) == {b"HTTP/1.1 200 OK"}
    else:  # no request yet: nothing to answer
        assert _answers(connections) == {b""}
    assert normal.failures == []
    assert len(normal.latencies) >= 5
    assert max(normal.latencies) < NORMAL_LATENCY_BOUND


async def test_the_connection_cap_holds_and_makes_room_for_new_clients(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    """Over ``server.max_connections``, the connection waiting longest for a request makes room for the new one;
    when every connection has a request in progress, the new one is closed at once."""
    cap = 50
    config = _config(tmp_path, sqlite_clinic, max_connections=cap, header_timeout_seconds=60, body_timeout_seconds=3)
    with running_fedgate(config) as (port, process):
        async with slow_clients(port, Slow.SILENT, 2 * cap) as silent, normal_client(port) as normal:
            await asyncio.sleep(1.5)
            held = established_connections(process.pid, port)
            cut = [c for c in silent if c.closed_after is not None]
        assert held <= cap + 1  # the normal client's connection may be open too
        assert len(cut) >= cap - 1, "connections over the cap are closed"
        assert all(c.closed_after is not None and c.closed_after < 1.5 for c in cut)  # at once, not by the timeout
        assert normal.failures == []
        assert len(normal.latencies) >= 5
        assert max(normal.latencies) < NORMAL_LATENCY_BOUND

        async with slow_clients(port, Slow.HALF_BODY, cap) as requests:
            await asyncio.sleep(0.5)  # every slot holds a request in progress: none can make room
            surplus, writer = await open_slow(port, Slow.SILENT)
            await wait_closed([surplus], 1.5)
            if writer is not None:
                writer.close()
            assert surplus.refused or (surplus.closed_after is not None and surplus.received == b"")
            await wait_closed(requests, 3 + MARGIN)  # body_timeout_seconds frees them
        assert _answers(requests) == {b"HTTP/1.1 408 Request Timeout"}
        async with normal_client(port) as normal:
            await asyncio.sleep(0.5)
        assert normal.failures == []
        assert normal.latencies
    output = process.stdout.read().decode() if process.stdout else ""
    reports = [orjson.loads(line) for line in output.splitlines() if '"connections_closed"' in line]
    assert reports, "closing connections is reported"
    assert sum(report["reasons"].get("made_room", 0) for report in reports) >= cap - 1


async def test_every_worker_closes_slow_clients(sqlite_clinic: Catalog, tmp_path: Path) -> None:
    with running_fedgate(_short_timeouts(tmp_path, sqlite_clinic), "--workers", "2") as (port, process):
        deadline = time.monotonic() + 30
        while len(worker_pids(process.pid)) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert len(worker_pids(process.pid)) == 2
        # Which worker accepts a connection is the kernel's choice: open slow clients, a few at a time, until
        # both workers hold some (and at least 100 are open).
        opened: list[tuple[SlowConnection, asyncio.StreamWriter | None]] = []
        held: list[int] = []
        async with normal_client(port) as normal:
            try:
                while (len(opened) < SLOW_CLIENTS or 0 in held or len(held) < 2) and len(opened) < 6 * SLOW_CLIENTS:
                    for kind in (Slow.SILENT, Slow.HALF_BODY) * 5:
                        opened.append(await open_slow(port, kind))
                    await asyncio.sleep(0.05)
                    held = [established_connections(worker, port) for worker in worker_pids(process.pid)]
                connections = [connection for connection, _ in opened]
                await wait_closed(connections, TIMEOUT + MARGIN)
            finally:
                await close_all(opened)
    assert len(held) == 2 and 0 not in held, f"the slow clients did not reach both workers: {held}"
    silent = [c for c in connections if c.kind is Slow.SILENT]
    half_bodies = [c for c in connections if c.kind is Slow.HALF_BODY]
    _assert_closed_in_time(silent, Slow.SILENT)
    _assert_closed_in_time(half_bodies, Slow.HALF_BODY)
    assert _answers(half_bodies) == {b"HTTP/1.1 408 Request Timeout"}
    assert normal.failures == []
    assert max(normal.latencies) < NORMAL_LATENCY_BOUND


async def test_headers_over_max_header_bytes_are_refused_as_they_arrive(port: int) -> None:
    """httptools buffers headers without limit; fedgate answers 431 once they pass server.max_header_bytes
    (65536 by default), while a client is still sending them, and closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\nx-filler: ")
    answer = asyncio.create_task(reader.read())
    sent = 0
    with contextlib.suppress(OSError):
        while not answer.done() and sent < 64 * 1024 * 1024:  # a client that stops once it is answered
            writer.write(b"a" * 65536)
            await writer.drain()
            await asyncio.sleep(0)  # let the reader see an answer
            sent += 65536
    received = await asyncio.wait_for(answer, 5)
    writer.close()
    assert received.startswith(b"HTTP/1.1 431 Request Header Fields Too Large")
    assert orjson.loads(received.split(b"\r\n\r\n", 1)[1])["errors"][0]["extensions"]["code"] == (
        "REQUEST_HEADERS_TOO_LARGE"
    )
    assert sent < 16 * 1024 * 1024, "answered long after the limit"


async def test_headers_under_max_header_bytes_are_served(port: int) -> None:
    headers = {"x-filler": "a" * 60_000}
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(f"http://127.0.0.1:{port}/graphql", json={"query": QUERY}, headers=headers)
    assert response.status_code == 200
    assert response.json()["data"]["clinic"]["person"] == {"personId": "p03"}
