"""Commands that run fedgate: ``serve`` and ``token`` (``demo`` is the demo package's, :mod:`demo.cli`)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import httpx
import typer

from gateway.auth.dev_issuer import DevIssuerState
from gateway.cli.common import (
    ConfigOption,
    app,
    console,
    fail,
    port_option,
    settings_path,
)
from gateway.configuration import load_configuration
from gateway.errors import ConfigError, FedgateError
from gateway.logs import configure_logging
from gateway.settings import read_settings


def run_gateway(
    config: Path, host: str | None = None, port: int | None = None, *, demo: bool = False, workers: int | None = None
) -> None:
    """Load and validate everything (:func:`~gateway.configuration.load_configuration`), then serve; every
    operator error (a bad file, an unset variable, a weak secret, a taken port) is one line and exit 2."""
    from gateway.app import create_app
    from gateway.serving import run_event_loop, serve, serve_workers

    try:
        loaded = load_configuration(config, host=host, port=port, workers=workers, demo=demo)
        configure_logging(loaded.settings.logging)
        if loaded.workers > 1:
            serve_workers(config, loaded.settings.server, loaded.host, loaded.port, loaded.workers)
        else:
            gateway = functools.partial(
                create_app,
                loaded.settings,
                loaded.catalog,
                loaded.policy,
                audit_signer=loaded.audit_signer,
                settle_heap=True,
            )
            run_event_loop(serve(gateway, loaded.settings.server, loaded.host, loaded.port, loaded.dev_issuer))
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
    run_gateway(settings_path(config), host, port, workers=workers)


@app.command()
def token(
    client: Annotated[str, typer.Option("--client", help="A client id from dev_issuer.clients.")],
    scope: Annotated[str | None, typer.Option(help="Ask for these scopes only (space-separated).")] = None,
    config: ConfigOption = None,
) -> None:
    """Print an access token for a client of the development issuer (the client-credentials grant).

    Point it at the demo it is for: ``--config demo/data/fedgate.8000.yaml`` (``fedgate demo`` prints it).
    """
    path = settings_path(config)
    try:
        settings, document = read_settings(path)
    except FedgateError as error:
        raise fail(str(error)) from None
    issuer = settings.dev_issuer
    if issuer is None:
        raise fail(f"{path} has no dev_issuer section: tokens come from your identity provider")
    if issuer.client(client) is None:
        known = ", ".join(c.id for c in issuer.clients)
        raise fail(f"'{client}' is not a client of the development issuer (its clients: {known})")
    try:
        state = DevIssuerState.load_or_create(issuer)
    except ValueError as error:
        raise fail(str(ConfigError([document.issue(("dev_issuer", "state_file"), str(error))]))) from None
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
