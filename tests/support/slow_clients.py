"""Hostile HTTP clients on loopback: connections that send nothing, half a request, or a byte at a time, and a
well-behaved client timing its requests meanwhile. Every loop is bounded in count and time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum

import httpx

QUERY = '{ clinic { person(personId: "p03") { personId } } }'
#: A request whose body never arrives whole: it declares 1,000 bytes.
HEADERS = b"POST /graphql HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
DRIP_SECONDS = 0.25


class Slow(StrEnum):
    """How a slow client behaves once connected."""

    SILENT = "sends nothing"
    HALF_HEADERS = "sends half its headers"
    DRIPPING_HEADERS = "sends its headers a byte at a time"
    HALF_BODY = "sends its headers and half its body"
    DRIPPING_BODY = "sends its headers, then its body a byte at a time"
    IDLE_KEPT_ALIVE = "sends one request, reads the answer, then stays idle"


@dataclass
class SlowConnection:
    """One slow client's connection: when its clock started and when (if) the server closed it."""

    kind: Slow
    started: float = 0.0
    closed_after: float | None = None
    received: bytes = b""
    refused: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def _drip(writer: asyncio.StreamWriter, data: bytes, connection: SlowConnection) -> None:
    for byte in data:
        if connection.closed_after is not None:
            return
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except OSError:
            return
        await asyncio.sleep(DRIP_SECONDS)


async def _until_closed(reader: asyncio.StreamReader, connection: SlowConnection) -> None:
    """Read until the server closes."""
    try:
        while chunk := await reader.read(65536):
            connection.received += chunk
    except OSError:
        pass
    connection.closed_after = time.monotonic() - connection.started


async def open_slow(port: int, kind: Slow) -> tuple[SlowConnection, asyncio.StreamWriter | None]:
    """Connect and start behaving as ``kind``. The clock starts before connecting: every timer of the server's
    starts later (on a loaded machine this client may learn it is connected well after the server did)."""
    connection = SlowConnection(kind, started=time.monotonic())
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        connection.refused = True
        return connection, None
    if kind is Slow.HALF_HEADERS:
        writer.write(HEADERS[: len(HEADERS) // 2])
    elif kind is Slow.HALF_BODY:
        writer.write(HEADERS + b"x" * 500)
    elif kind is Slow.DRIPPING_BODY:
        writer.write(HEADERS)
    elif kind is Slow.IDLE_KEPT_ALIVE:
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
    connection.tasks.append(asyncio.create_task(_until_closed(reader, connection)))
    if kind is Slow.DRIPPING_HEADERS:
        connection.tasks.append(asyncio.create_task(_drip(writer, HEADERS, connection)))
    elif kind is Slow.DRIPPING_BODY:
        connection.tasks.append(asyncio.create_task(_drip(writer, b"x" * 1000, connection)))
    return connection, writer


@contextlib.asynccontextmanager
async def slow_clients(port: int, kind: Slow, count: int) -> AsyncIterator[list[SlowConnection]]:
    """``count`` connections behaving as ``kind`` for as long as the block runs; closed at its end."""
    opened = [await open_slow(port, kind) for _ in range(count)]
    try:
        yield [connection for connection, _ in opened]
    finally:
        await close_all(opened)


async def close_all(opened: list[tuple[SlowConnection, asyncio.StreamWriter | None]]) -> None:
    """Close what :func:`open_slow` opened and stop its tasks."""
    for connection, writer in opened:
        for task in connection.tasks:
            task.cancel()
        if writer is not None:
            writer.close()
    await asyncio.gather(*(task for connection, _ in opened for task in connection.tasks), return_exceptions=True)


async def wait_closed(connections: list[SlowConnection], seconds: float) -> None:
    """Wait until the server has closed every connection, or ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while any(c.closed_after is None for c in connections) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


@dataclass
class NormalClient:
    """A well-behaved client asking one query on a new connection every ``interval`` seconds."""

    port: int
    interval: float = 0.1
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        url = f"http://127.0.0.1:{self.port}/graphql"
        limits = httpx.Limits(max_keepalive_connections=0)  # a new connection each time: through the accept path
        async with httpx.AsyncClient(limits=limits, timeout=10) as client:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    response = await client.post(url, json={"query": QUERY})
                except httpx.TransportError as error:
                    self.failures.append(repr(error))
                else:
                    if response.status_code == 200 and response.json()["data"]["clinic"]["person"]["personId"] == "p03":
                        self.latencies.append(time.monotonic() - started)
                    else:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")
                await asyncio.sleep(self.interval)


@contextlib.asynccontextmanager
async def normal_client(port: int) -> AsyncIterator[NormalClient]:
    """A :class:`NormalClient` asking queries for as long as the block runs."""
    client = NormalClient(port)
    stop = asyncio.Event()
    task = asyncio.create_task(client.run(stop))
    try:
        yield client
    finally:
        stop.set()
        await task
