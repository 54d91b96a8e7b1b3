"""Real servers on loopback for tests: any ASGI app, served by uvicorn on a free port; a TCP black hole."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml
from starlette.types import ASGIApp

from gateway.app import GatewayApp, create_app
from gateway.configuration import load_configuration
from schema.catalog import Catalog


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, port: int | None = None) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 until the block ends; yields its base URL."""
    port = port or free_port()
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            if task.done():
                task.result()
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def gateway_app(settings_file: Path) -> GatewayApp:
    """The application ``fedgate serve`` runs for ``settings_file``, loaded the way it loads it."""
    loaded = load_configuration(settings_file)
    return create_app(loaded.settings, loaded.catalog, loaded.policy, audit_signer=loaded.audit_signer)


def fedgate_serve(config: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    """``fedgate serve`` as its own process (output captured, for a failure message)."""
    command = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port), *extra]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def wait_until_healthy(process: subprocess.Popen[bytes], port: int, seconds: float = 60) -> None:
    """Wait for ``fedgate serve`` (``process``) to answer ``/healthz`` on ``port``; if it stops, or has not
    answered within ``seconds`` (generous: a loaded machine is slow to start), stop it and raise with its
    output (read only once it has ended: reading a running process's output would wait for ever)."""
    deadline = time.monotonic() + seconds
    while not healthy(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            output = process.communicate(timeout=10)[0].decode(errors="replace")
            raise RuntimeError(f"fedgate serve did not start within {seconds:.0f} s:\n{output}")
        time.sleep(0.1)


def healthy(port: int) -> bool:
    """Whether a gateway on 127.0.0.1:``port`` answers ``/healthz``."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def write_config(catalog: Catalog, directory: Path, **sections: Any) -> Path:
    """``directory/fedgate.yaml`` for ``catalog`` (written beside it): authentication off, JSON logs of
    warnings, and ``sections`` added (or replacing those)."""
    catalog_file = directory / "catalog.yaml"
    catalog_file.write_text(yaml.safe_dump(catalog.model_dump(mode="json", by_alias=True, exclude_none=True)))
    settings = {
        "catalog": str(catalog_file),
        "auth": {"enabled": False},
        "logging": {"format": "json", "level": "warning"},
        **sections,
    }
    path = directory / "fedgate.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@contextlib.contextmanager
def fedgate_server(catalog: Catalog, directory: Path, **sections: Any) -> Iterator[str]:
    """``fedgate serve`` for ``catalog`` (authentication off, ``sections`` added to its settings) in its own
    process until the block ends; yields its base URL."""
    config = write_config(catalog, directory, **sections)
    port = free_port()
    process = fedgate_serve(config, port)
    try:
        wait_until_healthy(process, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.asynccontextmanager
async def black_hole() -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never says a word; yields its port."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in held:
            writer.close()


@contextlib.contextmanager
def running_fedgate(config: Path, *extra: str, timeout: float = 30) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``fedgate serve`` on a free port until the block ends, once it answers ``/healthz``: (port, process)."""
    port = free_port()
    process = fedgate_serve(config, port, *extra)
    try:
        wait_until_healthy(process, port, timeout)
        yield port, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux ``/proc``)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return children


def worker_pids(pid: int) -> list[int]:
    """uvicorn's worker processes under ``pid`` (multiprocessing's spawned children)."""
    return [child for child in child_pids(pid) if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def established_connections(pid: int, port: int) -> int:
    """How many TCP connections to local ``port`` process ``pid`` holds open (Linux ``/proc``)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 01: ESTABLISHED
                inodes.add(fields[9])
    held = 0
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # the process has gone
        return 0
    for descriptor in descriptors:
        try:
            target = os.readlink(descriptor)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            held += 1
    return held
