"""Real HTTP servers on loopback for tests: any ASGI app, served by uvicorn on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp

from gateway.app import GatewayApp, create_app
from gateway.configuration import load_configuration


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
    return create_app(loaded.settings, loaded.catalog, loaded.policy)


def fedgate_serve(config: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    """``fedgate serve`` as its own process (output captured, for a failure message)."""
    command = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port), *extra]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def healthy(port: int) -> bool:
    """Whether a gateway on 127.0.0.1:``port`` answers ``/healthz``."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
