"""Commands that run fedgate: ``serve`` and ``token`` (``demo`` is the demo package's, :mod:`demo.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer

from gateway.auth.dev_issuer import DevIssuerState, refuse_outside_demo
from gateway.cli.common import (
    ConfigOption,
    app,
    console,
    fail,
    load_settings_or_exit,
    port_option,
    settings_path,
)
from gateway.errors import FedgateError
from gateway.logs import configure_logging
from gateway.settings import Settings


def run_gateway(
    settings: Settings, host: str | None, port: int | None, *, demo: bool, config: Path, workers: int | None = None
) -> None:
    from gateway.serving import check_workers, run_event_loop, serve, serve_workers

    configure_logging(settings.logging)
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    workers = workers or settings.server.workers
    dev_issuer = None
    try:
        if settings.dev_issuer is not None and (demo or settings.dev_issuer.enabled):
            dev_issuer = refuse_outside_demo(settings.dev_issuer, demo=demo, file=str(config))
        check_workers(settings, workers, file=str(config), dev_issuer=dev_issuer is not None)
        if workers > 1:
            serve_workers(config, settings.server, host, port, workers)
        else:
            run_event_loop(serve(settings, host, port, dev_issuer))
    except FedgateError as error:  # bad settings, or a port that is taken
        raise fail(str(error)) from None


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Override server.host.")] = None,
    port: Annotated[int | None, port_option("Override server.port.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=256, help="Override server.workers.")] = None,
) -> None:
    """Serve the gateway described by a settings file."""
    path = settings_path(config)
    run_gateway(load_settings_or_exit(path), host, port, demo=False, config=path, workers=workers)


@app.command()
def token(
    client: Annotated[str, typer.Option("--client", help="A client id from dev_issuer.clients.")],
    scope: Annotated[str | None, typer.Option(help="Ask for these scopes only (space-separated).")] = None,
    config: ConfigOption = None,
) -> None:
    """Print an access token for a client of the development issuer (the client-credentials grant).

    Point it at the demo it is for: ``--config demo/data/fedgate.8000.yaml`` (``fedgate demo`` prints it).
    """
    settings = load_settings_or_exit(config)
    issuer = settings.dev_issuer
    if issuer is None:
        raise fail(f"{settings_path(config)} has no dev_issuer section: tokens come from your identity provider")
    if issuer.client(client) is None:
        known = ", ".join(c.id for c in issuer.clients)
        raise fail(f"'{client}' is not a client of the development issuer (its clients: {known})")
    state = DevIssuerState.load_or_create(issuer)
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    try:
        response = httpx.post(f"{issuer.issuer}/oauth/token", data=data, auth=(client, state.client_secrets[client]))
    except httpx.TransportError:
        raise fail(f"the development issuer at {issuer.issuer} is not answering: start it with `make demo`") from None
    if response.status_code == 401:
        raise fail(
            f"the server at {issuer.issuer} does not know client '{client}' with this demo's secret: it is not the "
            f"issuer for these clients (another demo or program on port {issuer.port}?); stop it, or point --config "
            "at the settings of the demo that runs there"
        )
    if response.status_code != 200:
        raise fail(f"the development issuer refused: {_description(response)}")
    console.print(response.json()["access_token"], highlight=False, soft_wrap=True)


def _description(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error_description") or response.status_code)
    except ValueError:
        return f"HTTP {response.status_code}"
