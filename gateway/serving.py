"""Running the gateway (and, in the demo, the dev issuer beside it) under uvicorn in one process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp

from gateway.app import create_app
from gateway.auth.dev_config import DevIssuerSettings
from gateway.auth.dev_issuer import create_dev_issuer_app
from gateway.settings import Settings


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to :func:`serve` (which stops every server)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _server(app: ASGIApp, host: str, port: int) -> _Server:
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, server_header=False, lifespan="on"
    )
    return _Server(config)


async def serve(settings: Settings, host: str, port: int, dev_issuer: DevIssuerSettings | None = None) -> None:
    """Serve until SIGINT or SIGTERM; with ``dev_issuer``, serve the development issuer too."""
    servers = [_server(create_app(settings), host, port)]
    if dev_issuer is not None:
        servers.append(_server(create_dev_issuer_app(dev_issuer), dev_issuer.host, dev_issuer.port))
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    try:
        # If one server stops (a signal, or it could not bind its port), stop the others too.
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        stop()
        await asyncio.gather(*tasks)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if not all(server.started for server in servers):
        raise SystemExit(1)
