"""Running the gateway under uvicorn: in this process (with, in the demo, the dev issuer beside it), or as
several worker processes sharing one listening socket. Every server runs with :mod:`gateway.connections`'
protocol: a deadline for each phase of a request and a cap on connections, in every worker.

Workers share nothing but the socket: each loads the same settings, opens its own pools and keeps its own
caches, so a request may land on any of them (or on any host behind a load balancer). What must be the same
everywhere is configured, not generated: the policy secret (pseudonyms and hidden-key order) must come from
``policy.secret_env`` or ``policy.secret_file``, which :func:`~gateway.configuration.load_configuration`
insists on. Each worker loads its configuration with that same function.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Generator
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE

from gateway.app import GatewayApp, create_app
from gateway.auth.dev_config import DevIssuerSettings
from gateway.auth.dev_issuer import create_dev_issuer_app
from gateway.configuration import load_configuration
from gateway.connections import ConnectionLimits, ServerConfig
from gateway.errors import FedgateError, StartupError
from gateway.listening import listen
from gateway.logs import configure_logging
from gateway.metrics_processes import MetricsMultiprocess, metrics_directory
from gateway.settings import CONFIG_ENV, ServerSettings

log = structlog.get_logger("fedgate.serving")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to :func:`serve` (which stops every server)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


#: No websockets (fedgate has none: an upgrade request is answered as plain HTTP), uvicorn's records through
#: fedgate's logging, no access log and no ``server`` header.
_UVICORN: dict[str, Any] = {
    "log_config": None,
    "access_log": False,
    "server_header": False,
    "lifespan": "on",
    "ws": "none",
}


def _server(app: ASGIApp, host: str, port: int, server: ServerSettings) -> _Server:
    return _Server(ServerConfig(app, ConnectionLimits.from_settings(server), host=host, port=port, **_UVICORN))


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed (it is with ``uvicorn[standard]``), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; kept for platforms without it
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def app_from_environment() -> GatewayApp:
    """The application of one worker process (a uvicorn factory): the settings file named by $FEDGATE_CONFIG,
    validated again by this process (the parent did before binding; a file changed since is one line here,
    and uvicorn's start-up failure code stops the parent instead of restarting the worker)."""
    try:
        configuration = load_configuration(Path(os.environ[CONFIG_ENV]), workers=1)
    except FedgateError as error:
        print(f"fedgate: {error}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    configure_logging(configuration.settings.logging)
    return create_app(
        configuration.settings,
        configuration.catalog,
        configuration.policy,
        audit_signer=configuration.audit_signer,
        settle_heap=True,
    )


def serve_workers(config: Path, server: ServerSettings, host: str, port: int, workers: int) -> None:
    """Serve with ``workers`` processes on one socket until SIGINT or SIGTERM (uvicorn supervises them).

    The socket is bound here, before any worker starts: a busy port is one :class:`StartupError`. Each
    worker gets the same connection limits (``server``), so ``server.max_connections`` is per worker. The
    workers share a private metrics directory (:mod:`gateway.metrics_processes`), removed when they stop.
    """
    sock = listen(host, port, what="the gateway")
    log.info("listening", service="gateway", url=f"http://{host}:{port}", workers=workers)
    os.environ[CONFIG_ENV] = str(config.resolve())
    settings = ServerConfig(
        "gateway.serving:app_from_environment",
        ConnectionLimits.from_settings(server),
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **_UVICORN,
    )
    with metrics_directory() as directory:  # before any worker starts: each inherits it
        supervisor = MetricsMultiprocess(settings, sockets=[sock], directory=directory)
        supervisor.run()
    if any(worker.process.exitcode == STARTUP_FAILURE for worker in supervisor.processes):
        raise StartupError("a worker could not start (its line above says why), so the gateway stopped")


async def serve(
    app: Callable[[], ASGIApp],
    server: ServerSettings,
    host: str,
    port: int,
    dev_issuer: DevIssuerSettings | None = None,
) -> None:
    """Serve the application ``app()`` builds until SIGINT or SIGTERM, with the connection limits of
    ``server``; with ``dev_issuer``, serve the development issuer too.

    Every socket is bound before anything is built or served, so a busy port stops start-up with a
    :class:`StartupError` naming it (and who holds it), and nothing else is said.
    """
    sockets = [listen(host, port, what="the gateway")]
    if dev_issuer is not None:
        try:
            sockets.append(listen(dev_issuer.host, dev_issuer.port, what="the development issuer"))
        except StartupError:
            sockets[0].close()
            raise
    servers = [_server(app(), host, port, server)]
    log.info("listening", service="gateway", url=f"http://{host}:{port}")
    if dev_issuer is not None:
        servers.append(_server(create_dev_issuer_app(dev_issuer), dev_issuer.host, dev_issuer.port, server))
        log.info("listening", service="dev_issuer", url=dev_issuer.issuer)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in zip(servers, sockets, strict=True)]
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
